"""The comparison run of issue #8: the same as ``zoo compare`` (see ``zoo compare --help``).

    python benchmarks/compare.py            # every model, full budget (an hour or two on 2 cores)
    python benchmarks/compare.py --quick    # the demo budget (a few minutes)

Results: ``benchmarks/results/compare.json`` (``compare_quick.json``), with the command, versions and
machine; the logic is `zoo.benchmark.compare`.
"""
import sys

from zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
