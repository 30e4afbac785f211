"""The benchmark results files (``benchmarks/results/*.json``) as Markdown, for the documentation
site's Results page: each file's command, date and machine, then its rows as a table (the files
whose rows zoo knows: speed, deploy, stream, score, compare) or its JSON (the others)."""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Sequence

__all__ = ["render_results", "render_file"]


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v).replace("|", "\\|")


def _table(header: Sequence[str], rows: List[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.0f} %"


def _speed(doc) -> str:
    rows = []
    for r in doc.get("rows", []):
        fp32 = max(r.get("speedup_fp32", 0), r.get("speedup_zoo-fp32-compiled", 0))
        best = r.get("bf16_best", {})
        rows.append([r["model"], r.get("peer_impl", ""), f"{fp32:.2f}×", _pct(best.get("fraction_of_matmul_peak")),
                     _pct(best.get("time_split", {}).get("compute_share")),
                     best.get("below_half_peak_because", "")])
    return _table(["model", "peer", "fp32 fast path × peer (best of compiled / not)", "bf16 at its best: % of bf16 matmul peak",
                   "share of time in convs / matmuls", "below half the peak because"], rows)


def _deploy(doc) -> str:
    rows = [[r["model"], r["best"].get("int8"), r.get("int8_vs_bf16"), _pct(r.get("int8_agreement")),
             r.get("meets_targets")] for r in doc.get("rows", [])]
    return _table(["model", "int8 path", "int8 speed vs best bf16", "int8 top-1 agreement", "meets targets"], rows)


def _stream(doc) -> str:
    rows = [[r["model"], r["mode"], r["dtype"], r["frames_per_s"], r["realtime_factor"],
             _pct(r.get("fraction", {}).get("of_conv_peak")) if "fraction" in r else "–"] for r in doc.get("rows", [])]
    text = _table(["model", "mode", "dtype", "frames/s", "× real time", "% conv peak"], rows)
    agreement = doc.get("agreement") or {}
    if agreement:
        text += "\nOnline forms against the fp32 offline model on their last clip, and bf16 against fp32 (top-1 agreement):\n\n" + _table(
            ["model", "videos", "frames compared", "fp32 stream vs offline", "bf16 stream vs offline", "bf16 vs fp32 stream"],
            [[m, a["videos"], a["frames_compared"], _pct(a["fp32_top1_agreement"]), _pct(a["bf16_top1_agreement"]),
              _pct(a.get("bf16_vs_fp32_stream_top1_agreement"))] for m, a in agreement.items()])
    return text


def _score(doc) -> str:
    rows = [[r["config"], r["videos_per_s"], r["scoring_seconds"], r.get("overhead_vs_local"), r.get("tables_equal_local")]
            for r in doc.get("rows", [])]
    return _table(["configuration", "videos/s", "scoring s", "overhead vs local", "tables equal local"], rows)


def _compare(doc) -> str:
    rows = []
    for name, m in (doc.get("models") or {}).items():
        lat, bench = m.get("latency") or {}, m.get("bench") or {}
        rows.append([name, m.get("params") and round(m["params"] / 1e6, 2), m.get("gflops"),
                     (bench.get("top1") or {}).get("normal"), lat.get("clips_per_s_fp32"), lat.get("clips_per_s_bf16")])
    return _table(["model", "params (M)", "GFLOPs", "SynthMotion top-1 %", "clips/s fp32", "clips/s bf16"], rows)


RENDERERS: Dict[str, Callable[[dict], str]] = {"speed.json": _speed, "deploy.json": _deploy, "stream.json": _stream,
                                               "score.json": _score, "compare.json": _compare}


def render_file(path: str) -> str:
    """One results file as a Markdown section."""
    name = os.path.basename(path)
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    machine = doc.get("machine") or {}
    parts = [f"## `{name}`\n"]
    meta = [("command", doc.get("command")), ("date", doc.get("date")),
            ("machine", machine.get("cpu") if isinstance(machine, dict) else machine)]
    parts.append("".join(f"- {k}: `{v}`\n" for k, v in meta if v))
    if name in RENDERERS:
        parts.append("\n" + RENDERERS[name](doc))
    else:
        text = json.dumps(doc, indent=1)
        parts.append(f"\n??? note \"the file ({len(text.splitlines())} lines)\"\n\n    ```json\n" +
                     "".join(f"    {line}\n" for line in text.splitlines()) + "    ```\n")
    return "\n".join(parts)


def render_results(directory: str) -> str:
    """Every ``*.json`` of ``directory``, rendered in name order, under one title."""
    names = sorted(n for n in os.listdir(directory) if n.endswith(".json"))
    head = ("# Results\n\nEvery file of `benchmarks/results/`, as committed: generated by the command each names "
            "(see [how they are measured](benchmarks.md)).\n\n")
    return head + "\n".join(render_file(os.path.join(directory, n)) for n in names)
