"""Unrelated questions and answers: the intermediate interactions of long-range episodes.

Each is answerable from its own question and uses no fact word at all, so an answer that stays on its own
topic shares nothing with the interaction to remember (which is what the long-range "negative" reward checks).
Each entry: (question variants, answer).
"""

from __future__ import annotations

DISTRACTORS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("Why does the moon shine at night?", "What makes the moon bright?"),
     "The moon shines because light from the sun falls on it."),
    (("Where do fish live?", "What is a home for fish?"), "Fish live in water, like ponds and the sea."),
    (("What makes a rainbow?", "How does a rainbow appear?"),
     "A rainbow appears when sunlight shines through drops of water."),
    (("How does a seed grow?", "What does a seed need to grow?"),
     "A seed needs water, soil and light to grow into a plant."),
    (("What does a robot do?", "What is a robot?"), "A robot is a machine that can move and help people."),
    (("Why do we sleep?", "Why do people need sleep?"), "We sleep so our body can rest and grow strong."),
    (("What is snow made of?", "How is snow made?"), "Snow is made of tiny pieces of frozen water."),
    (("Why do leaves fall in autumn?", "What happens to leaves in autumn?"),
     "In autumn the days get cold, and the leaves fall from the trees."),
    (("What does a train do?", "Where does a train go?"), "A train carries people on long tracks from town to town."),
    (("Why do bubbles float?", "How can a bubble fly?"), "A bubble floats because it is full of light air."),
    (("What is a shadow?", "How is a shadow made?"), "A shadow is a dark shape made when something blocks the light."),
    (("Why do we brush our teeth?", "Why is brushing teeth good?"),
     "We brush our teeth to keep them clean and strong."),
    (("How do plants drink water?", "How does a plant get water?"), "A plant drinks water through its roots."),
    (("What does a butterfly start as?", "Where does a butterfly come from?"),
     "A butterfly starts as a tiny caterpillar."),
    (("What does a rocket do?", "Where does a rocket go?"), "A rocket flies up very fast into space."),
    (("Why does ice melt?", "What happens to ice when it is warm?"),
     "Ice melts and turns into water when it gets warm."),
    (("Why do we wear coats?", "What is a coat for?"), "We wear coats to stay warm when it is cold outside."),
    (("What is a clock for?", "Why do we have clocks?"), "A clock shows us what time it is."),
    (("How do ants work together?", "What do ants do all day?"),
     "Ants work together to carry food and build their home."),
    (("Why is the sea salty?", "What makes sea water salty?"),
     "The sea is salty because water carries tiny bits of salt from rocks into it."),
    (("What do firefighters do?", "How do firefighters help?"), "Firefighters put out fires and keep people safe."),
    (("Why do we wash our hands?", "When should we wash our hands?"),
     "We wash our hands to remove germs before we eat."),
    (("What does a doctor do?", "How does a doctor help us?"), "A doctor helps sick people feel better."),
    (("How does a bicycle move?", "What makes a bicycle go?"),
     "A bicycle moves when we push the pedals with our feet."),
    (("Why do stars twinkle?", "What makes stars twinkle?"),
     "Stars twinkle because their light passes through moving air."),
    (("What is thunder?", "What makes the sound of thunder?"), "Thunder is the loud sound that comes after lightning."),
)
