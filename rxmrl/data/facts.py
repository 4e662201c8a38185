"""Fact slots and their possible values: the ground-truth vocabulary of synthetic episodes.

`Episode.facts` maps a slot to one of its values (e.g. {"name": "lily", "colour": "red"}). Values are
lower-case single words and no value belongs to two slots, so a word in an answer identifies its slot;
that is how the fact-recall reward tells a recalled fact from a contradicting one.
"""

from __future__ import annotations

FACT_VALUES: dict[str, tuple[str, ...]] = {
    "name": ("lily", "tom", "mia", "ben", "sara", "max", "anna", "leo", "zoe", "sam", "ella", "finn",
             "ruby", "jack", "nora", "omar", "ivy", "theo", "lucy", "kai"),
    "friend": ("bella", "oscar", "daisy", "felix", "rosa", "hugo", "lola", "milo", "hana", "ezra"),
    "animal": ("dog", "cat", "bunny", "bird", "frog", "duck", "turtle", "horse", "puppy", "kitten",
               "owl", "fox", "bear", "mouse", "lamb"),
    "object": ("ball", "kite", "hat", "box", "book", "drum", "boat", "key", "cup", "shoe", "bell",
               "balloon", "blanket", "crayon", "shell"),
    "colour": ("red", "blue", "green", "yellow", "purple", "orange", "pink", "brown", "white", "black",
               "silver", "golden"),
    "place": ("park", "garden", "forest", "beach", "farm", "school", "kitchen", "river", "hill",
              "library", "meadow", "village", "lake", "market", "barn"),
    "number": ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"),
    "food": ("apple", "cake", "cookie", "bread", "banana", "soup", "pie", "carrot", "cherry", "honey"),
    "weather": ("sunny", "rainy", "windy", "snowy", "cloudy", "foggy"),
    "feeling": ("happy", "sad", "scared", "proud", "excited", "sleepy", "angry", "surprised"),
}

VALUE_TO_SLOT: dict[str, str] = {v: slot for slot, values in FACT_VALUES.items() for v in values}
assert len(VALUE_TO_SLOT) == sum(len(v) for v in FACT_VALUES.values()), "a value belongs to two slots"
