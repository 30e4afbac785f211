"""Start-up time of the ``zoo`` command: how long ``zoo --help``, ``zoo COMMAND --help``, ``zoo list``
and ``zoo info`` take against ``python -c "import torch"``, and which heavy libraries each imports.

Each command runs ``--runs`` times as a fresh process (``python -m zoo ...``) in interleaved rounds
(one run of every command per round, so a slow spell of the machine hits all alike); reported is
the median wall time, its ratio to ``import torch``'s median, and the heavy modules the command's
process had imported when it finished (read by a wrapper that runs the command in-process).

    python benchmarks/startup.py                      # writes benchmarks/results/startup.json
    python benchmarks/startup.py --runs 9 --out /tmp/startup.json
    python benchmarks/startup.py --checkout /tmp/old --out /tmp/before.json   # another checkout's zoo
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
HEAVY = ("torch", "torchvision", "timm", "fvcore", "iopath", "av", "matplotlib", "numpy", "yaml")
COMMANDS = {
    "import torch": ["-c", "import torch"],
    "zoo --help": ["-m", "zoo", "--help"],
    "zoo eval --help": ["-m", "zoo", "eval", "--help"],
    "zoo train --help": ["-m", "zoo", "train", "--help"],
    "zoo list": ["-m", "zoo", "list"],
    "zoo info tsm_r50": ["-m", "zoo", "info", "tsm_r50"],
}
# runs a zoo command in-process, then prints which heavy modules it had imported
_PROBE = ("import sys, json; from zoo.cli import main\n"
          "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
          "print(json.dumps([m for m in {heavy!r} if m in sys.modules]), file=sys.stderr)")


def imported_by(args, run) -> list:
    """The heavy modules a command imports (an untimed in-process run; ``import torch`` imports torch)."""
    if args[0] == "-c":
        return ["torch"]
    proc = run([sys.executable, "-c", _PROBE.format(heavy=HEAVY), *args[2:]])
    return json.loads(proc.stderr.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=7, help="fresh processes per command (default 7)")
    p.add_argument("--out", default=str(RESULTS / "startup.json"))
    p.add_argument("--checkout", help="time the zoo of another checkout (its root directory), e.g. an older commit")
    args = p.parse_args(argv)
    checkout = os.path.abspath(args.checkout) if args.checkout else str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": checkout}

    def run(cmd):
        return subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=checkout, env=env)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from zoo.benchmark.machine import machine_description, versions
    from zoo.engine.checkpoint import atomic_write_text

    times = {name: [] for name in COMMANDS}
    names = list(COMMANDS)
    for cmd in COMMANDS.values():  # warm the page cache and __pycache__ first
        run([sys.executable, *cmd])
    for r in range(args.runs):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            run([sys.executable, *COMMANDS[name]])
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["import torch"])
    rows = []
    print(f"# {args.runs} fresh processes per command, interleaved; median wall seconds; ratio to `import torch`")
    print(f"{'command':22} {'median s':>9} {'x torch':>8}  imports")
    for name, cmd in COMMANDS.items():
        med = statistics.median(times[name])
        heavy = imported_by(cmd, run)
        rows.append({"command": name, "argv": ["python", *cmd], "median_s": round(med, 3),
                     "ratio_to_import_torch": round(med / base, 3), "runs_s": [round(t, 3) for t in times[name]],
                     "imports": heavy})
        print(f"{name:22} {med:9.3f} {med / base:8.2f}  {', '.join(heavy) or '-'}")
    doc = {"command": " ".join([os.path.basename(sys.executable), *sys.argv]),
           "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "versions": versions(),
           "machine": machine_description(), "runs": args.runs, "checkout": checkout,
           "checkout_commit": run(["git", "rev-parse", "--short", "HEAD"]).stdout.strip(),
           "timing": "wall time of a fresh `python ...` process, median over runs interleaved rounds",
           "rows": rows}
    atomic_write_text(args.out, json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
