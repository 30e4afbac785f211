"""The streaming benchmark of issue #21: every model following a 60 s, 30 fps, 320x240 video with 1 s
sliding windows (decoding included), online TSM-R50 frame by frame in fp32 and bf16, and the peak RSS of
a timeline on a short and a long 1080p video (see `zoo.benchmark.stream`).

    python benchmarks/stream.py                       # everything (about 30 min on 2 cores)
    python benchmarks/stream.py --models tsm_r50      # one model

Results: ``benchmarks/results/stream.json`` (``rows``: model, mode, frames_per_s, realtime_factor, ...),
with the command, versions and machine.
"""
import sys

from zoo.benchmark.stream import main

if __name__ == "__main__":
    sys.exit(main())
