"""The results file of ``zoo compare``: its ``settings`` block, what an earlier file's entries are
still good for under new settings, atomic writing and reading, and reading one latency back."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .._errors import BadData
from ..engine.checkpoint import atomic_write_text
from .bench_training import DATA, TRAIN
from .latency import MEMORY
from .numerics import HELDOUT_SEED_OFFSET, NEAR_TIE

__all__ = ["markdown_table", "settings_block", "previous_entries", "provenance", "write_results", "load_results", "fast_path_ms",
           "fixed_width"]


def write_results(path: str, doc: Dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")


def load_results(path: Optional[str]) -> Optional[dict]:
    """The parsed results file, or None when ``path`` is None or does not exist."""
    if not path or not os.path.isfile(path):
        return None
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise BadData(f"results file {path!r} is not valid JSON: {e}") from e


def settings_block(budget: Dict[str, int], threads: int, seed: int, meta: Dict[str, Any]) -> Dict[str, Any]:
    """The ``settings`` block of the results (what a resumed run must share)."""
    n_val = meta["settings"]["val_per_class"] * len(meta["classes"])
    return {
        "seed": seed,
        "latency": {"batch": 1, "threads": threads, "warmup": budget["warmup"], "reps": budget["reps"],
                    "layout": budget["layout"], "compile": budget["compile"],
                    "input": "canonical (info.input_shape)",
                    "timing": "median seconds per call over reps interleaved rounds (per round, every path: an "
                              "untimed call, then a timed one; reported in ms)",
                    "memory": MEMORY},
        "data": {"name": DATA["name"], "difficulty": DATA["difficulty"], "classes": meta["classes"],
                 "twins": meta["twins"], "per_class": budget["per_class"], "frames": DATA["frames"],
                 "size": DATA["size"], "train_videos": budget["per_class"] * len(meta["classes"]) - n_val,
                 "val_videos": n_val},
        # re-checked on every reuse: a change here keeps the training runs (see `previous_entries`)
        "numerics": {"bf16_agreement_videos": n_val + budget["heldout_per_class"] * len(meta["classes"]),
                     "heldout": f"val split + SynthMotion seed {seed + HELDOUT_SEED_OFFSET}, "
                                f"{budget['heldout_per_class']} clips per class (both splits), never trained on",
                     "near_tie": NEAR_TIE},
        "train": {"epochs": budget["epochs"], **{k: v for k, v in TRAIN.items() if k != "amp"},
                  "threads": threads, "amp": TRAIN["amp"]},
    }


def previous_entries(results: str, settings: Dict[str, Any], quick: bool) -> Dict[str, Dict[str, Any]]:
    """The model entries of an earlier results file, less what its settings invalidate: its latency
    if the latency settings differ, its training if the data, training or seed differ (cost is kept;
    the ``numerics`` settings are re-checked on every reuse anyway); none from the other budget."""
    if not os.path.isfile(results):
        return {}
    with open(results) as f:
        old = json.load(f)
    new, was = json.loads(json.dumps(settings)), old.get("settings", {})
    if old.get("quick") != quick:
        return {}
    drop = {"latency"} if was.get("latency") != new["latency"] else set()
    if any(was.get(k) != v for k, v in new.items() if k not in ("latency", "numerics")):
        drop.add("bench")
    models = {n: {k: v for k, v in e.items() if k not in drop} for n, e in old.get("models", {}).items()}
    for e in models.values():  # kept latency names the run (and the machine) that measured it
        if "latency" in e:
            by = dict(e["latency"].get("measured_by") or provenance(old))
            if by.get("machine") is None and old.get("machine") is not None:
                by["machine"] = old["machine"]
            e["latency"] = {**e["latency"], "measured_by": by}
    return models


def latency_machine(results: Dict[str, Any], entry: Dict[str, Any]) -> Dict[str, Any]:
    """The machine a results entry's latency was measured on (the file's, for rows that do not say)."""
    by = (entry.get("latency") or {}).get("measured_by") or {}
    return by.get("machine") or results.get("machine") or {}


def same_machine(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    """Whether two machine descriptions are the same machine for timing (CPU, its bf16/int8 kernels, threads)."""
    keys = ("cpu", "logical_cpus", "amx_bf16", "avx512_bf16", "avx512_vnni", "threads")
    return all(a.get(k) == b.get(k) for k in keys)


def provenance(doc: Dict[str, Any]) -> Dict[str, Any]:
    return {"command": doc.get("command"), "date": doc.get("date"),
            "zoo_commit": doc.get("versions", {}).get("zoo_commit")}


def fast_path_ms(lat: Dict[str, Any], tag: str) -> Tuple[Optional[float], bool]:
    """``(ms, compiled)`` of the faster of the measured fast paths for ``tag`` ("fp32" / "bf16")."""
    plain, compiled = lat.get(f"fast_{tag}_ms"), lat.get(f"compiled_{tag}_ms")
    if compiled is not None and (plain is None or compiled < plain):
        return compiled, True
    return plain, False


def fixed_width(cols, rows, header: bool = True) -> str:
    """A text table: ``cols`` are (title, width) pairs, ``rows`` lists of cell strings; the first
    column left-aligned, the others right-aligned."""
    def line(cells):
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, (_, w)) in enumerate(zip(cells, cols)))
    return "\n".join(([line([c for c, _ in cols])] if header else []) + [line(r) for r in rows])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> List[str]:
    """A Markdown table's lines: ``header`` then one line per row (cells as ``str`` gives them)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
