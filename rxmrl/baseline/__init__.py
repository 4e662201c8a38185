"""The stateless baseline: a decoder-only transformer of the RxT's size that re-reads the whole conversation
every turn (what an RxT with memory is compared against), with its tokenizer wrapper, prompt rendering,
generation, supervised training, GRPO fine-tuning, and the `system` the retention benchmark asks questions.

It uses the data, model, env and reward layers and nothing of `rxmrl.train` or `rxmrl.bench`, so both the
benchmarks and the curriculum's end-of-run benchmark can build on it.
"""
