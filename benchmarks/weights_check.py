"""What checking a cached weights file by content costs: hashing it on every use against the
identity check zoo uses (a ``stat``: inode, size, mtime, ctime; the file is hashed again only when
one of them moved), beside what the use itself costs (``torch.load`` of the state dict, as a cached
``zoo.build(..., pretrained=True)`` does).

For every model with released weights, its state dict (random weights, the released classifier
size) is saved to a file in a temporary directory and timed warm (in the page cache, as a
repeated build finds it): sha256 of the file, ``torch.load(weights_only=True)`` of it, and one
``os.stat``. Median of ``--reps`` interleaved rounds.

    python benchmarks/weights_check.py            # writes benchmarks/results/weights_check.json
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--out", default=str(RESULTS / "weights_check.json"))
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import torch

    import zoo
    from zoo.benchmark.machine import machine_description, versions
    from zoo.benchmark.results import write_results

    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="zoo-weights-check-") as tmp:
        for name in zoo.list_models():
            records = zoo.models.model_weights(name)
            if not records:
                continue
            w = records[0]
            model = zoo.models.build_with_checkpoint(name, None, num_classes=w.num_classes, **w.model_args)
            path = os.path.join(tmp, f"{name}.pt")
            torch.save(model.state_dict(), path)
            del model
            times = {"sha256": [], "load": [], "stat": []}
            sha256_file(path)  # into the page cache
            for _ in range(args.reps):
                t = time.perf_counter()
                sha256_file(path)
                times["sha256"].append(time.perf_counter() - t)
                t = time.perf_counter()
                torch.load(path, map_location="cpu", weights_only=True)
                times["load"].append(time.perf_counter() - t)
                t = time.perf_counter()
                os.stat(path)
                times["stat"].append(time.perf_counter() - t)
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append({"model": name, "weights": w.name, "mib": round(os.path.getsize(path) / 2**20, 1),
                         "sha256_ms": round(1e3 * med["sha256"], 1), "load_ms": round(1e3 * med["load"], 1),
                         "stat_us": round(1e6 * med["stat"], 1),
                         "hash_over_load": round(med["sha256"] / med["load"], 2)})
            os.unlink(path)
            r = rows[-1]
            print(f"{name:<22} {r['mib']:7.1f} MiB  sha256 {r['sha256_ms']:7.1f} ms  torch.load {r['load_ms']:7.1f} ms  "
                  f"stat {r['stat_us']:5.1f} us  hash/load {r['hash_over_load']:.2f}", flush=True)
    doc = {"measured_by": {"script": "benchmarks/weights_check.py", "reps": args.reps, "threads": 1,
                           "files": "state dicts of random weights at the release's classifier size, warm in the "
                                    "page cache", "timing": "median of interleaved rounds",
                           "machine": machine_description(), "versions": versions()},
           "rows": rows,
           "summary": {"median_hash_over_load": statistics.median(r["hash_over_load"] for r in rows),
                       "max_sha256_ms": max(r["sha256_ms"] for r in rows),
                       "max_stat_us": max(r["stat_us"] for r in rows)}}
    write_results(args.out, doc)
    print(f"median hash / load {doc['summary']['median_hash_over_load']:.2f}; wrote {args.out}")


if __name__ == "__main__":
    main()
