"""An example reward plug-in: two small rewards, one in each style rxmrl accepts.

Use them by file path (a bare name finds this copy in the rewards/ catalog), from the CLI or a reward spec:
    rxmrl reward score --spec example_plugin.py:question_echo --cases cases.jsonl --json
    [[plugins]] name = "question_echo", spec = "example_plugin.py:question_echo", weight = -1.0

Or register one for a name with `@register_reward`, or publish it from a package as an entry point:
    [project.entry-points."rxmrl.rewards"]
    question-echo = "my_package.rewards:question_echo"
"""

import torch

from rxmrl.reward import RewardBatch, RewardOutput, register_reward
from rxmrl.reward.text import content_words


@register_reward("question-echo")
def question_echo(batch: RewardBatch) -> RewardOutput:
    """rxmrl style: share of the answer's content words that only repeat the question (0 = none, 1 = all).

    An answer made of the question's own words says nothing the memory had to keep; weigh it negatively.
    """
    shares = []
    for query, answer in zip(batch.query, batch.generated):
        said = content_words(answer)
        asked = set(content_words(query))
        shares.append(sum(w in asked for w in said) / len(said) if said else 0.0)
    share = torch.tensor(shares, dtype=torch.float32)
    return RewardOutput(total=share, components={"question_echo": share})


def ends_with_sentence(prompts, completions, **kwargs):
    """TRL style (works as a TRL reward function as is): 1.0 when the answer ends with . ! or ?, else 0.0."""
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if t.rstrip().endswith((".", "!", "?")) else 0.0 for t in texts]
