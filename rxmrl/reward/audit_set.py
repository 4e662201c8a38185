"""A small built-in set of TinyStories-style episodes without facts, for `rxmrl reward audit --data builtin`.

Hand-written (not sampled from the synthetic generator, whose episodes carry facts): each story states a few
values a follow-up asks about — colours, shapes, sizes, numbers, places, names — so a value swap is possible.
"""

from __future__ import annotations

from rxmrl.data.episode import Episode, Interaction


def _episode(query: str, story: str, *follow_ups: tuple[str, str]) -> Episode:
    return Episode(Interaction(query, story), tuple(Interaction(q, a) for q, a in follow_ups), strategy="single")


AUDIT_EPISODES: tuple[Episode, ...] = (
    _episode("Tell me a story about a girl and a ball.",
             "Once upon a time, a girl named Lily found a big red ball in the garden. The ball was round and "
             "shiny. She played with it all day with her friend Bella.",
             ("What did Lily find in the garden?", "Lily found a big red ball in the garden."),
             ("Who played with Lily?", "Her friend Bella played with her.")),
    _episode("Can you tell me about Tom and his boat?",
             "Tom had a small blue boat with a yellow star on the side. Every morning he took the boat to the "
             "lake. One day he saw three ducks swimming near the shore.",
             ("What was on the side of Tom's boat?", "A yellow star was on the side of his boat."),
             ("How many ducks did Tom see?", "Tom saw three ducks near the shore of the lake.")),
    _episode("Tell me a story about a cat and a box.",
             "A little white cat named Snow lived on a farm. She liked to sleep in a square green box by the "
             "barn. When it rained, she ran to the house and hid under the bed.",
             ("Where did Snow like to sleep?", "Snow liked to sleep in a square green box by the barn."),
             ("What colour was the cat?", "The cat was white.")),
    _episode("Tell me about Mia's birthday.",
             "It was Mia's birthday. Her mom baked a pink cake with five candles. Mia and her friend Oscar "
             "went to the park and flew a purple kite shaped like a heart.",
             ("What cake did Mom bake?", "She baked a pink cake with five candles."),
             ("What kite did Mia and Oscar fly?", "They flew a purple kite shaped like a heart at the park.")),
    _episode("Tell me a story about a boy who found a shell.",
             "Ben walked along the beach with his dad. He found a tiny orange shell shaped like a star. He put "
             "it in a brown bag and carried it home to show his sister Ruby.",
             ("What did Ben find on the beach?", "He found a tiny orange shell shaped like a star."),
             ("Who did Ben show the shell to?", "He showed it to his sister Ruby at home.")),
    _episode("Can you tell me about a dog and a hat?",
             "Max the dog wore a tall black hat to the village market. The hat had two silver bells. Everyone "
             "laughed when the bells rang, and Max wagged his tail.",
             ("What did Max wear to the market?", "Max wore a tall black hat to the market.")),
    _episode("Tell me about Anna and the bird.",
             "Anna saw a little yellow bird sitting on a round stone by the river. The bird sang four songs. "
             "Anna gave it some bread and it flew up to the hill.",
             ("Where was the bird sitting?", "The bird was sitting on a round stone by the river."),
             ("How many songs did the bird sing?", "The bird sang four songs.")),
    _episode("Tell me a story about Leo and his blocks.",
             "Leo had six wooden blocks. Two were red and four were green. He built a tall tower in the kitchen, "
             "and his friend Hugo put a small triangle block on the top.",
             ("How many blocks did Leo have?", "Leo had six wooden blocks."),
             ("What did Hugo put on the tower?", "Hugo put a small triangle block on the top.")),
)
