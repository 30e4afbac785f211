"""The deployment benchmark of issue #20: per model, batch-1 CPU latency of eager fp32, zoo's fast path
(fp32, bf16), onnxruntime fp32 and both int8 backends, timed interleaved in one process, and int8 top-1
agreement with fp32 on the SynthMotion bench networks (see `zoo.benchmark.deploy`).

    python benchmarks/deploy.py                     # every model (about an hour on 2 cores, plus
                                                    # training the bench networks if runs/compare lacks them)
    python benchmarks/deploy.py --models tsm_r50    # one model

Results: ``benchmarks/results/deploy.json`` (``rows``: one per model), with the command, versions and machine.
"""
import sys

from zoo.benchmark.deploy import main

if __name__ == "__main__":
    sys.exit(main())
