"""The words of synthetic episodes: story templates, questions about facts, and sentences that add facts.

Rules every template keeps (the tests check them on generated episodes):
- fact values appear only through `{placeholders}`, so a fact word in a text is always the episode's value;
- questions contain no fact value: an answer cannot be copied from its question;
- a question's answer states the values of its topic's `slots` as plain words (names capitalised).
The vocabulary is deliberately small (a few hundred words) so a ~1000-token BPE covers it.
"""

from __future__ import annotations

from dataclasses import dataclass

FEMALE_NAMES = frozenset({"lily", "mia", "sara", "anna", "zoe", "ella", "ruby", "nora", "ivy", "lucy",
                          "bella", "daisy", "rosa", "lola", "hana"})

# where something happens ("in the park") and where one goes ("to the park")
AT_PLACE = {"park": "in the park", "garden": "in the garden", "forest": "in the forest", "beach": "at the beach",
            "farm": "on the farm", "school": "at the school", "kitchen": "in the kitchen", "river": "by the river",
            "hill": "on the hill", "library": "in the library", "meadow": "in the meadow",
            "village": "in the village", "lake": "by the lake", "market": "at the market", "barn": "in the barn"}
MASS_FOODS = frozenset({"bread", "soup", "honey"})

# The remembered interaction: a value-free request, answered by a 30-60 word story stating
# name, animal, object, colour, place and weather (and, in some, a feeling).
FIRST_QUERIES = (
    "Tell me a story about a child who found something.",
    "Can you tell me a short story?",
    "Please tell me a story about a child and an animal.",
    "I would like to hear a little story.",
    "Tell me a story, please.",
)

STORIES = (
    "Once upon a time, a little {kid} named {Name} went to the {place} on a {weather} day. {Pron} took {poss} "
    "{animal} along. Near a big tree, {Name} found {a_thing}. {Name} and the {animal} played with it until the "
    "sun went down.",
    "It was a {weather} morning {at_place}. {Name} was walking with {poss} {animal}. Suddenly the {animal} "
    "stopped and looked at the ground. There, in the grass, was {a_thing}. {Name} picked it up and smiled. "
    "\"What a lucky day,\" {pron} said.",
    "{Name} loved to play {at_place}. One {weather} afternoon, {pron} saw something under a bush. It was "
    "{a_thing}! {Poss} {animal} came running to see it. {Name} held it up high, and the {animal} jumped around "
    "with joy.",
    "\"Look at this!\" said {Name}. {Pron} was {at_place} with {poss} {animal}, and the day was {weather}. In "
    "{poss} hands was {a_thing} that {pron} had just found. The {animal} looked at it with big eyes. {Name} "
    "laughed and decided to keep it.",
    "There was a {kid} called {Name} who had {a_animal} as a best friend. On a {weather} day, they went to the "
    "{place} together. While they played, {Name} found {a_thing} under a log. {Name} gave the {animal} a big "
    "hug, and they walked home slowly.",
    "The {place} was quiet on that {weather} day. A {kid} named {Name} sat down to rest, and {poss} {animal} sat "
    "close by. Then {Name} noticed {a_thing} next to a stone. {Pron} smiled, put it in a bag, and went on "
    "walking with the {animal}.",
)
STORY_SLOTS = ("name", "animal", "object", "colour", "place", "weather")
STORY_FEELING = "In the end, {Name} felt {feeling}."


@dataclass(frozen=True)
class Topic:
    """A question about facts; `slots` must all be known before it is asked, and its answer states them."""

    name: str
    slots: tuple[str, ...]
    questions: tuple[str, ...]
    answer: str


TOPICS = (
    Topic("find", ("name", "colour", "object"),
          ("What did the child find?", "Can you tell me what the child found?"), "{Name} found {a_thing}."),
    Topic("colour", ("object", "colour"),
          ("What colour was the thing the child found?", "Which colour did the found thing have?"),
          "The {object} was {colour}."),
    Topic("where", ("name", "place"),
          ("Where did the story happen?", "Where was the child that day?"), "{Name} was {at_place}."),
    Topic("who", ("name",), ("What was the name of the child?", "What was the child called?"),
          "The child was called {Name}."),
    Topic("animal", ("name", "animal"), ("Which animal was with the child?", "What animal was in the story?"),
          "{A_animal} was with {Name}."),
    Topic("weather", ("weather",), ("What was the weather like that day?", "How was the weather in the story?"),
          "It was {weather} that day."),
    Topic("find_where", ("name", "colour", "object", "place"),
          ("What did the child find, and where?", "Where was the child, and what was found there?"),
          "{Name} found {a_thing} {at_place}."),
    Topic("animal_find", ("animal", "name", "object"),
          ("Which animal was there when the thing was found?", "Who was with the child when the thing was found?"),
          "{A_animal} was there when {Name} found the {object}."),
    Topic("weather_where", ("weather", "name", "place"),
          ("What was the day like, and where did the child go?",), "It was a {weather} day, and {Name} went to "
          "the {place}."),
    Topic("feeling", ("name", "feeling"),
          ("How did the child feel at the end?", "What feeling did the child have at the end?"),
          "{Name} felt {feeling}."),
    Topic("friend", ("friend", "name"),
          ("Who came to play with the child?", "What was the name of the friend who came?"),
          "{Friend} came to play with {Name}."),
    Topic("food", ("food",), ("What did they share?", "What was the snack they shared?"), "They shared {a_food}."),
    Topic("number", ("number",), ("How many stars did they count?", "What number of stars did they see?"),
          "They counted {number} stars."),
    Topic("friend_find", ("name", "friend", "colour", "object"),
          ("What did the child show the friend?",), "{Name} showed {Friend} the {colour} {object}."),
    Topic("friend_animal", ("friend", "name", "animal"),
          ("Who did the friend play with?",), "{Friend} played with {Name} and the {animal}."),
    Topic("food_where", ("food", "place"),
          ("Where did they share the snack, and what was it?",), "They shared {a_food} {at_place}."),
    Topic("number_weather", ("weather", "number"),
          ("What was the weather, and how many stars did they count?",),
          "It was {weather}, and they counted {number} stars."),
)
# topics a long-range episode returns to at its end: several facts of the first interaction at once
RECALL_TOPICS = ("find", "find_where", "animal_find", "weather_where")

# Cumulative follow-ups add facts through their *question* (the memory sees queries), never through the
# reference answer the agent cannot see; later questions then ask about them.
INTRODUCTIONS = {
    "friend": ("Then a friend named {Friend} came to play.", "Later, {poss} friend {Friend} came along."),
    "food": ("Later they sat down and shared {a_food}.", "After a while they shared {a_food} as a snack."),
    "number": ("In the evening they counted {number} stars in the sky.",
               "When it got dark, they saw {number} stars and counted them."),
    "feeling": ("By the end of the day the child felt {feeling}.", "At the end, the child felt very {feeling}."),
}
FILLERS = ("They kept on playing.", "The afternoon went by slowly.", "They walked a little further.", "")
RECALL_PREFIXES = ("Let us go back to the first story.", "Now think about the story from the start.",
                   "Remember the story from the beginning?")


def article(word: str) -> str:
    """`a kite`, `an owl`, `some bread`."""
    if word in MASS_FOODS:
        return f"some {word}"
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def words_for(facts: dict[str, str]) -> dict[str, str]:
    """Placeholder values for the templates, from an episode's facts (missing slots are simply absent)."""
    w: dict[str, str] = {}
    if "name" in facts:
        female = facts["name"] in FEMALE_NAMES
        w.update(Name=facts["name"].capitalize(), kid="girl" if female else "boy", pron="she" if female else "he",
                 Pron="She" if female else "He", poss="her" if female else "his", Poss="Her" if female else "His")
    if "animal" in facts:
        w.update(animal=facts["animal"], a_animal=article(facts["animal"]),
                 A_animal=article(facts["animal"]).capitalize())
    if "object" in facts and "colour" in facts:
        thing = f"{facts['colour']} {facts['object']}"
        w.update(object=facts["object"], colour=facts["colour"], a_thing=article(thing))
    if "place" in facts:
        w.update(place=facts["place"], at_place=AT_PLACE[facts["place"]])
    for slot in ("weather", "feeling", "number"):
        if slot in facts:
            w[slot] = facts[slot]
    if "friend" in facts:
        w["Friend"] = facts["friend"].capitalize()
    if "food" in facts:
        w["a_food"] = article(facts["food"])
    return w
