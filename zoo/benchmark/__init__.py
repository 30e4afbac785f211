"""Measurements across models: the comparison run behind ``zoo compare`` and the model cards.

- `latency`: params, GFLOPs, batch-1 latency and peak memory of one model, in a fresh process.
- `bench_training`: the SynthMotion bench networks, which models share one, training them.
- `numerics`: the fast path's fp32 and bf16 checks on a trained bench network.
- `results`: the results file (settings, reuse of an earlier file, atomic I/O).
- `compare`: the run itself (`run_compare`); `cards`: rendering the model cards from the results.
- `machine`: where a measurement ran (machine, versions, zoo commit, peak memory).
- `peaks`: the machine's matmul and conv peaks (fp32, bf16, int8), measured in the run that uses them.

Nothing here knows the repository's layout: the CLI passes every path.
"""
