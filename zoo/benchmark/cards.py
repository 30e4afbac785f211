"""Model cards: ``model_cards/<name>.md``, ``model_cards/README.md`` and the accuracy-vs-GFLOPs plot.

Every number in a card is formatted here from `zoo.model_info(name)`, the model's `Weights`
records (published results, release files), the results file ``zoo compare`` writes (the CLI
passes ``benchmarks/results/compare.json``) or that of ``python -m zoo.benchmark.deploy``
(``benchmarks/results/deploy.json``); nothing is typed by hand. A model
missing from the results (or a missing file) gets a card that says "not measured yet".
Statements about the measurements (order sensitivity, chance levels) are derived from the same
numbers; the model paragraph is the family module's docstring (summary and citation).

Hand-written explanations go in ``model_cards/notes/<name>.md`` (and, shared by a family's cards,
``family_<family>.md``) and are appended under "Notes".
They must hold no numbers (a number there would not follow the results when they change):
describe the mechanism and point at the table rows instead.

    zoo cards                  # regenerate model_cards/ from benchmarks/results/compare.json
    zoo cards --check          # exit 1 listing stale or missing cards
"""
from __future__ import annotations

import inspect
import math
import os
import re
import sys
from typing import Dict, List, Optional, Sequence

from .._errors import UsageError
from ..data.samplers import DENSE_WINDOW
from ..engine.checkpoint import atomic_write, atomic_write_text
from ..flops import FLOP_CONVENTION
from ..models import bench_preset, categories_source, get_entry, list_models, model_info, model_weights
from .deploy import INT8_PATHS
from .results import fast_path_ms, latency_machine, load_results, markdown_table as _table, same_machine

__all__ = ["render_card", "render_index", "plot", "write_cards", "stale_cards", "render_all", "load_results",
           "PLOT_NAME"]

PLOT_NAME = "accuracy_vs_gflops.png"
NOT_MEASURED = "Not measured yet — run `zoo compare`."
DASH = "–"
ORDERS = ("normal", "reversed", "shuffled")


# ---------------------------------------------------------------- small helpers

def _f(x, spec: str = ".1f", unit: str = "") -> str:
    """``x`` formatted with ``spec`` (``DASH`` for a missing value)."""
    return DASH if x is None else format(x, spec) + unit


def _kv(d: Optional[dict], skip: Sequence[str] = (), sep: str = " ") -> str:
    """``key value`` pairs of a settings dict, in its own order (nested dicts as ``k=v``)."""
    def val(v):
        return "{" + _kv(v, sep="=") + "}" if isinstance(v, dict) else v
    return ", ".join(f"{k}{sep}{val(v)}" for k, v in (d or {}).items() if k not in skip) or DASH


def _entry(results: Optional[dict], name: str) -> Optional[dict]:
    return ((results or {}).get("models") or {}).get(name)


def _chance(results: dict) -> Dict[str, float]:
    """Chance top-1 (100 / classes), twin chance (50) and their 2-standard-error bands (points)."""
    data = results.get("settings", {}).get("data", {})
    k = len(data.get("classes") or ()) or None
    n = data.get("val_videos")
    twin_n = n * 2 * len(data.get("twins") or ()) / k if (n and k) else None

    def band(p, m):
        return 200 * math.sqrt(p * (1 - p) / m) if m else None

    return {"chance": 100 / k if k else None, "band": band(1 / k, n) if k else None, "n": n,
            "twin_band": band(0.5, twin_n), "twin_n": twin_n}


def _verdict(value: Optional[float], chance: Optional[float], band: Optional[float]) -> str:
    if value is None or chance is None:
        return "not comparable with chance"
    band = band or 0.0
    if value < chance - band:
        return "below chance"
    return "above chance" if value > chance + band else "at chance"


def _family_paragraph(name: str) -> str:
    """The summary and citation paragraphs of the family module's docstring (a trailing
    sentence that introduces a diagram, ending in ':', is dropped)."""
    doc = inspect.getdoc(sys.modules[get_entry(name).builder.__module__]) or ""
    paragraphs = [p for p in doc.split("\n\n") if p.strip()][:2]
    if paragraphs and paragraphs[-1].rstrip().endswith(":"):
        ends = [m.start() for m in re.finditer(r"\.\s", paragraphs[-1])]
        paragraphs[-1] = paragraphs[-1][:ends[-1] + 1] if ends else ""
    return "\n\n".join(p for p in paragraphs if p)


def _results(name: str) -> list:
    """Every published result of ``name``'s released weights, in record order."""
    return [r for w in model_weights(name) for r in w.results]


def _published(name: str) -> str:
    """The headline (first) published result as 'top-1 % (dataset, views)'."""
    results = _results(name)
    if not results:
        return DASH
    r = results[0]
    return f"{r.top1} ({r.dataset}, {r.views})"


# ---------------------------------------------------------------- card sections

def _model_section(name, info, results, notes_dir) -> List[str]:
    lines = [_family_paragraph(name), "", f"Paper: {info.paper}."]
    if info.notes:
        lines += ["", f"Registry notes: {info.notes}"]
    return lines


def _protocol_section(name, info, results, notes_dir) -> List[str]:
    if info.sampling == "segment":
        clip = (f"{info.num_segments} segments × {info.frames_per_segment} consecutive frame(s)"
                + (" + the segment's centre frame (the RGB stream's)" if info.centre_frame else "")
                + f" = {info.num_frames} frames (segment sampling"
                + (f"; dense windows: segments {max(1, DENSE_WINDOW // info.num_segments)} frames apart, training included"
                   if info.segment_clips == "dense_sample" else "") + ")")
    else:
        clip = (f"{info.num_frames} frames at stride {info.sampling_rate}, spanning "
                f"{info.num_frames * info.sampling_rate} source frames (dense sampling)")
    c, s = info.test_views
    rows = [("clip", clip),
            ("spatial", f"short side {info.resize_size}, centre crop {info.crop_size} × {info.crop_size}"),
            ("mean / std", f"{', '.join(f'{m:g}' for m in info.mean)} / {', '.join(f'{v:g}' for v in info.std)} "
                           f"(frames in [0, 1] → {info.value_range[0]:g} … {info.value_range[1]:g})"),
            ("test views", f"{c} × {s} (clips × crops) = {info.num_views} view(s)"
                           + (f"; clip k's segments shifted by k/{c} of a segment" if info.sampling == "segment"
                              and info.segment_clips == "shifted" and c > 1 else "")
                           + {"prob-mean": "", "logit-mean": "; logits averaged over the views",
                              "max": "; the views' maximum softmax per class"}[info.view_aggregation]),
            ("input", f"[B, {', '.join(map(str, info.input_shape))}] (B, C, T, H, W)"),
            ("classes", f"{info.num_classes} ({info.dataset})")]
    return _table(("", "protocol"), rows)


def _cost_section(name, info, results, notes_dir) -> List[str]:
    e = _entry(results, name)
    rows = [("reference (`model_info`)", _f(info.ref_params_m, ".2f"), _f(info.ref_gflops, ".2f"),
             _f(info.ref_gflops and info.ref_gflops * info.num_views, ".2f"))]
    if e:
        rows.append(("measured (`zoo compare`)", _f(e.get("params") and e["params"] / 1e6, ".2f"),
                     _f(e.get("gflops"), ".2f"), _f(e.get("gflops") and e["gflops"] * info.num_views, ".2f")))
    else:
        rows.append(("measured (`zoo compare`)", "not measured yet", DASH, DASH))
    return (_table(("", "params (M)", "GFLOPs per view", f"GFLOPs × {info.num_views} views"), rows)
            + ["", f"Per view at the canonical input {list(info.input_shape)}. FLOP convention — {FLOP_CONVENTION}."])


def _published_section(name, info, results, notes_dir) -> List[str]:
    if not _results(name):
        return ["No accuracy is published for this model."]
    rows = [(f"`{w.tag}`", r.dataset, str(r.top1), "" if r.top5 is None else str(r.top5), r.views, r.source)
            for w in model_weights(name) for r in w.results]
    return _table(("weights", "dataset", "top-1 %", "top-5 %", "views", "source"), rows)


def _synth_statements(info, e, results) -> List[str]:
    """Number-backed reading of the SynthMotion row: order sensitivity and chance levels."""
    b, ch = e["bench"], _chance(results)
    t1 = b.get("top1", {})
    normal, rev, shuf = (t1.get(o) for o in ORDERS)
    out = []
    if None not in (normal, rev, shuf):
        out.append(f"Order sensitivity: normal − reversed = {normal - rev:+.1f} points, normal − shuffled = "
                   f"{normal - shuf:+.1f} points (an order-blind model scores the same in every order).")
    if ch["chance"] is not None:
        band = f"chance {ch['chance']:.1f} ± {ch['band']:.1f} %, 2 s.e. over {ch['n']} val videos"
        for order, v in zip(ORDERS, (normal, rev, shuf)):
            out.append(f"{order.capitalize()} order: {_f(v)} % is {_verdict(v, ch['chance'], ch['band'])} ({band}).")
    if b.get("twin_acc") is not None:
        v = _verdict(b["twin_acc"], 50.0, ch["twin_band"])
        out.append(f"Between time-reversed twins (normal order): {b['twin_acc']:.1f} % right is {v} "
                   f"(chance 50 ± {_f(ch['twin_band'])} %)"
                   + ("; the model tells a motion from its time reverse." if v == "above chance" else
                      "; the model does not tell a motion from its time reverse." if v == "at chance" else "."))
    out.append("Reversing a clip turns a twin class into its twin, so a model that reads the direction of "
               "motion falls below chance in reversed order, while an order-blind one keeps its normal accuracy.")
    return [f"- {s}" for s in out]


def _bench_run_line(name, b) -> str:
    run = b.get("run", name)
    group = list(dict.fromkeys([run, *b.get("shared_with", ()), name]))
    if group == [name]:
        return f"Bench run `{run}` (this model alone)."
    others = [n for n in group if n != name]
    return (f"Bench run `{run}`, shared by {', '.join(f'`{n}`' for n in group)}: "
            f"at the bench preset the architecture of `{name}` is identical to that of "
            f"{', '.join(f'`{n}`' for n in others)}, so one training serves all of them.")


def _synth_section(name, info, results, notes_dir) -> List[str]:
    e = _entry(results, name)
    if not e or "bench" not in e:
        preset = bench_preset(name)
        return [NOT_MEASURED, "", f"Bench preset (`zoo.models.bench_preset`): frames {preset.frames}, "
                                  f"model_args {_kv(preset.model_args, sep='=')}."]
    b = e["bench"]
    rows = [(f"top-{k} %", *(_f(b.get(f"top{k}", {}).get(o)) for o in ORDERS)) for k in (1, 5)]
    lines = _table(("", *ORDERS), rows) + [""]
    lines += [_bench_run_line(name, b), "",
              f"Bench model: model_args {_kv(b.get('model_args'), sep='=') if b.get('model_args') else 'none'}; "
              f"{b.get('frames')} frames at {b.get('size')} px; "
              f"{_f(b.get('params') and b['params'] / 1e6, '.2f')} M params, {_f(b.get('gflops'), '.3f')} GFLOPs "
              f"per clip; trained in {_f(b.get('train_seconds'), '.0f')} s. Video top-1 on the val split with the "
              f"shared harness; frames in normal, reversed and shuffled order.", ""]
    return lines + _synth_statements(info, e, results)


def _latency_section(name, info, results, notes_dir) -> List[str]:
    e = _entry(results, name)
    if not e:
        return [NOT_MEASURED]
    lat = e.get("latency")
    if not lat:
        return ["Not in the results file (run `zoo compare` without `--skip-latency`)."]
    b = e.get("bench", {})
    eager = lat.get("eager_fp32_ms")

    def row(label, key, extra=""):
        ms = lat.get(key)
        return (label + extra, _f(ms), _f(ms and 1e3 / ms, ".2f"), _f(ms and eager and eager / ms, ".2f", "×"))

    rows = [("eager fp32 (as built)", _f(eager), _f(eager and 1e3 / eager, ".2f"), "1.00×"),
            row("`zoo.optimize` fp32", "fast_fp32_ms"), row("`zoo.optimize` bf16", "fast_bf16_ms")]
    for tag in ("fp32", "bf16"):
        if f"compiled_{tag}_ms" in lat:
            rows.append(row(f"`zoo.optimize` {tag}, `compile=True`", f"compiled_{tag}_ms",
                            f" (compiles in {_f(lat.get(f'compile_{tag}_s'), '.0f')} s)"))
    lines = _table(("", "ms per clip", "clips / s", "speed-up vs eager"), rows) + [""]
    if any(f"compiled_{tag}_ms" in lat for tag in ("fp32", "bf16")):
        lines.append(f"`compile=\"auto\"` keeps the {lat.get('path_fp32')} path in fp32 and the "
                     f"{lat.get('path_bf16')} one in bf16 (the faster on this machine). Compile times are the "
                     f"first call's, with inductor's on-disk cache as the run found it.")
    measured = e.get("input_shape") or list(info.input_shape)
    where = "the canonical input" if list(measured) == list(info.input_shape) else "the earlier canonical input"
    lines.append(f"Batch 1 at {where} {list(measured)}; peak memory "
                 f"{_f(lat.get('peak_rss_mib'), '.0f')} MiB. {_agreement(b, _numerics(results))} Optimized fp32 "
                 f"vs eager on the val split: max |Δlogit| / max |logit| = {_f(b.get('fp32_max_rel_dlogit'), '.1e')}.")
    by = lat.get("measured_by")
    machine = latency_machine(results, e)
    elsewhere = not same_machine(machine, results.get("machine") or {})
    if by and (by.get("date") != results.get("date") or elsewhere):  # kept from an earlier run, or another machine
        on = f" on {machine.get('cpu', DASH)} ({machine.get('threads', DASH)} threads; {_flags(machine)})" \
            if elsewhere else ""
        lines.append(f"Timings measured by `{by.get('command')}` on {by.get('date')} (zoo commit "
                     f"{by.get('zoo_commit')}){on}; the training and numerics by the run below.")
        if elsewhere:
            lines.append("That is not the machine of the other models' latency rows: compare its timings with "
                         "theirs only as ratios (speed-ups).")
    return lines


def _deploy_row(deploy: Optional[dict], name: str) -> Optional[dict]:
    return next((r for r in (deploy or {}).get("rows", []) if r.get("model") == name), None)


DEPLOY_PATHS = (("eager fp32 (as built)", "eager_fp32"), ("`zoo.optimize` fp32", "fast_fp32"),
                ("`zoo.optimize` fp32, `compile=True`", "compiled_fp32"), ("`zoo.optimize` bf16", "fast_bf16"),
                ("`zoo.optimize` bf16, `compile=True`", "compiled_bf16"),
                ("onnxruntime fp32 (`zoo export --format onnx`)", "ort_fp32"),
                ("onnxruntime int8 (`zoo export --int8`; `int8_backend=\"onnxruntime\"`)", "ort_int8"),
                ("PT2E + inductor int8 (`int8_backend=\"pt2e\"`)", "pt2e_int8"),
                ("zoo per-layer int8 in the bf16 fast path (`int8_backend=\"onednn\"`)", "onednn_int8"))


def _deploy_section(name, info, results, notes_dir, deploy=None) -> List[str]:
    r = _deploy_row(deploy, name)
    if not r:
        return ["Not measured yet — run `python -m zoo.benchmark.deploy`."]
    ms = r["latency"]["ms"]
    eager = ms.get("eager_fp32")
    rows = [(label, _f(ms.get(k)), _f(ms.get(k) and eager / ms[k], ".2f", "×")) for label, k in DEPLOY_PATHS if k in ms]
    best = r["best"]
    lines = _table(("path", "ms per clip", "speed-up vs eager fp32"), rows) + [""]
    failed = r["latency"].get("int8_errors") or {}
    if failed:
        lines.append("Could not quantize: " + "; ".join(f"{k} ({v})" for k, v in failed.items()) + ".")
    if best["int8"] is None:
        lines.append("No int8 backend could quantize this model.")
    else:
        a = r.get("agreement")
        chosen = ("the fastest of the per-layer backend and the whole-model backends with the most convs in int8"
                  if a else "the fastest; which backends quantize every conv is counted with the agreement")
        ratio = (f"int8 ({INT8_PATHS[best['int8']]}: {chosen}) runs "
                 f"{r['int8_vs_bf16']:.2f}× as fast as bf16 (`{best['bf16']}`)")
        if a:
            per = ", ".join(_backend_agreement(k, a[k]) for k in ("onnxruntime", "pt2e", "onednn") if k in a)
            videos = a[INT8_PATHS[best["int8"]]]["videos"]
            verdict = "met" if r["meets_targets"] else "not met"
            lines.append(f"{ratio}; its top-1 agrees with fp32 on {100 * r['int8_agreement']:.2f} % of {videos} "
                         f"SynthMotion videos (bench network `{a['run']}`, calibrated on {a['calibration_videos']} "
                         f"train videos; per backend: {per}). Targets ≥ {TARGETS_TEXT}: {verdict}.")
        else:
            lines.append(f"{ratio}; its agreement with fp32 is pending (the bench network is not trained yet).")
    faster = "faster" if r["ort_fp32_vs_fast_fp32"] > 1 else "slower"
    lines.append(f"onnxruntime fp32 is {faster} than the fp32 fast path (`{best['fp32']}`): "
                 f"{r['ort_fp32_vs_fast_fp32']:.2f}× its speed.")
    by = r["latency"].get("measured_by") or deploy
    m = by.get("machine", {})
    lines.append(f"Batch 1 at {r['latency']['input_shape']}, random weights, all paths timed in the same interleaved "
                 f"rounds by `{by.get('command')}` on {by.get('date')} ({m.get('cpu', DASH)}, "
                 f"{m.get('threads', DASH)} threads; {_flags(m)}): ratios within this table hold, absolute times "
                 f"differ from the latency section's machine.")
    return lines


def _backend_agreement(name: str, backend: dict) -> str:
    if "error" in backend:
        return f"{name} could not quantize it"
    convs = backend.get("convs_int8")
    return f"{name} {100 * backend['top1_agreement']:.2f} %" + (f" with {convs[0]} of {convs[1]} convs in int8"
                                                                  if convs else "")


def _flags(m: dict) -> str:
    return ", ".join(k for k in ("amx_bf16", "avx512_bf16", "avx512_vnni") if m.get(k)) or "no bf16/VNNI extensions"


TARGETS_TEXT = "1.5× bf16 at 99 % agreement"


def _numerics(results: dict) -> dict:
    return results.get("settings", {}).get("numerics", {})


def _agreement(b: dict, numerics: dict) -> str:
    """bf16 vs fp32 top-1 agreement of the trained bench network, with where its flips sit."""
    agree = b.get("bf16_top1_agreement")
    if agree is None:
        return ""
    videos = b.get("bf16_agreement_videos")
    where = f"{videos} SynthMotion videos (val split and a held-out set)" if videos else "the bench val split"
    text = f"On {where}, bf16 and fp32 agree on {100 * agree:.2f} % of top-1 predictions"
    gaps, near = b.get("bf16_flip_gaps"), b.get("near_tie_fraction")
    if gaps:
        text += f"; each of the {len(gaps)} that flip is within {max(gaps):.4f} of a tie in fp32 probability"
    if near is not None and "near_tie" in numerics:
        text += f" ({100 * near:.0f} % of the videos are within {numerics['near_tie']:g})"
    return text + "."


def _weights_section(name, info, results, notes_dir) -> List[str]:
    records = model_weights(name)
    if not records:
        return ["No official weights are released for this model; train it with `zoo train " + name + "`."]
    lines = ["Released weights, one record each (`zoo.list_weights`, `zoo.weights_info`); the first is the "
             "default of `pretrained=True`. A file set is loaded in the order given.", ""]
    for w in records:
        lines.append(f"### `{w.name}`")
        lines.append("")
        source = categories_source(w.dataset) if w.categories else "not shipped"
        lines.append(f"- classes: {w.num_classes} ({w.dataset}; names: {source})")
        lines.append(f"- source: {w.source or '-'}")
        if w.urls:
            lines += [f"- URL: {u}" for u in w.urls]
        elif w.files:
            lines.append(f"- files: {', '.join(f'`{n}`' for n in w.file_names)}, fetched by hand from {w.page or '-'}"
                         f" (then `zoo weights fetch {w.name} --from FILE`)")
        else:
            lines.append("- files: none released (published results only)")
        if w.files:
            hashes = [h for h in w.hashes if h]
            lines.append(f"- sha256: {', '.join(f'`{h}`' for h in hashes) if hashes else 'none published (pinned at first download)'}")
        for r in w.results:
            lines.append(f"- published top-1 {r.top1:g}" + (f" / top-5 {r.top5:g}" if r.top5 else "")
                         + f" on {r.dataset}: {r.views} ({r.source})")
        if w.model_args or w.input_args:
            lines.append(f"- differs from the defaults: {', '.join(f'{k}={v}' for k, v in {**w.model_args, **w.input_args}.items())}")
        if w.notes:
            lines.append(f"- notes: {w.notes}")
        lines.append("")
    default = records[0]
    lines += ["```python", "import zoo",
              f'model = zoo.build("{name}", pretrained=True)  # {default.name}; class names in model.categories',
              f'model = zoo.build("{name}", weights="{default.tag}", num_classes=10)  # a new classifier to fine-tune',
              "```", "",
              f"`zoo predict {name} VIDEO --pretrained` prints class names; `zoo convert --model {name} FILE... OUT` "
              "maps an official file into a zoo checkpoint, and `weights=` also takes official files or URLs."]
    return lines


def _notes_section(name, info, results, notes_dir) -> List[str]:
    """The family's notes (``family_<family>.md``: what every card of the family shares), then the model's own."""
    paths = [os.path.join(notes_dir, f) for f in (f"family_{info.family}.md", f"{name}.md")] if notes_dir else []
    texts = []
    for path in paths:
        if os.path.isfile(path):
            with open(path) as f:
                texts.append(f.read().strip())
    return ["\n\n".join(texts)] if texts else []


def _measurement_lines(results: Optional[dict]) -> List[str]:
    """Machine, versions, settings and command of the results file (shared by cards and index)."""
    if not results:
        return [NOT_MEASURED, "", f"FLOP convention — {FLOP_CONVENTION}."]
    m, s = results.get("machine", {}), results.get("settings", {})
    data = dict(s.get("data", {}))
    classes, twins = data.pop("classes", None) or (), data.pop("twins", None) or ()
    flags = _flags(m)
    return [f"- Machine: {m.get('cpu', DASH)}, {m.get('threads', DASH)} threads of {m.get('logical_cpus', DASH)} "
            f"logical CPUs ({flags}); {m.get('platform', DASH)}; load average at start {m.get('loadavg_at_start')}.",
            f"- Versions: {_kv(results.get('versions'))}.",
            f"- Latency: {_kv(s.get('latency'))}.",
            f"- Data: {_kv(data)}; {len(classes)} classes ({', '.join(map(str, classes))}), "
            f"{len(twins)} time-reversed twin pairs ({'; '.join('/'.join(map(str, t)) for t in twins) or DASH}).",
            f"- Training budget: {_kv(s.get('train'))}; seed {s.get('seed')}.",
            f"- FLOP convention — {FLOP_CONVENTION}.",
            f"- Results file last written by `{results.get('command', DASH)}` on {results.get('date', DASH)}"
            + (" (quick run: a reduced budget)." if results.get("quick") else ".")]


def _measurement_section(name, info, results, notes_dir) -> List[str]:
    lines = _measurement_lines(results)
    by = ((_entry(results, name) or {}).get("latency") or {}).get("measured_by")
    if by and (by.get("command"), by.get("date")) != (results.get("command"), results.get("date")):
        lines.append(f"- This model's latency and memory: measured by `{by.get('command')}` on {by.get('date')} "
                     f"(zoo commit {by.get('zoo_commit')}); rows measured by other runs keep their own record.")
    return lines


CARD_SECTIONS: Sequence[tuple] = (
    ("Model", _model_section),
    ("Input protocol", _protocol_section),
    ("Parameters and GFLOPs", _cost_section),
    ("Published accuracy", _published_section),
    ("SynthMotion accuracy (measured)", _synth_section),
    ("CPU latency (measured)", _latency_section),
    ("Deployment: ONNX and int8 (measured)", _deploy_section),
    ("Official weights", _weights_section),
    ("Notes", _notes_section),
    ("How it was measured", _measurement_section),
)

READS_DEPLOY = {_deploy_section}  # sections that read the deployment benchmark's results

GENERATED = "<!-- generated by `zoo cards` from zoo.model_info and {results}; do not edit -->"
SOURCE = "the zoo compare results"  # how a card names its results file when the caller does not


def render_card(name: str, results: Optional[dict], notes_dir: Optional[str] = None, *,
                source: str = SOURCE, deploy: Optional[dict] = None) -> str:
    """The markdown card of ``name`` from its `ModelInfo`, ``results`` (the parsed ``zoo compare``
    file named ``source``, or None) and ``deploy`` (``python -m zoo.benchmark.deploy``'s results, or None);
    a hand-written ``notes_dir/<name>.md`` is appended under "Notes"."""
    info = model_info(name)
    lines = [GENERATED.format(results=source), "", f"# {name}", "",
             f"Family `{info.family}` · `zoo.build(\"{name}\")` · {info.num_classes} classes ({info.dataset}) · "
             f"[all models](README.md)"]
    for title, section in CARD_SECTIONS:
        body = (section(name, info, results, notes_dir, deploy) if section in READS_DEPLOY
                else section(name, info, results, notes_dir))
        if body:
            lines += ["", f"## {title}", "", *body]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- index

def _index_row(name: str, results: Optional[dict], deploy: Optional[dict] = None) -> List[str]:
    info, e = model_info(name), _entry(results, name)
    row = [f"[{name}]({name}.md)", info.family, _f(info.ref_params_m, ".2f"),
           f"{_f(info.ref_gflops, '.2f')} × {info.num_views}", _published(name)]
    b = (e or {}).get("bench")
    if b:
        t1 = b.get("top1", {})
        row.append(" / ".join(_f(t1.get(o)) for o in ORDERS) + f" (`{b.get('run', name)}`)")
    else:
        row.append("not measured")
    lat = (e or {}).get("latency")
    if lat:
        ms = {tag: fast_path_ms(lat, tag) for tag in ("fp32", "bf16")}
        other = "" if same_machine(latency_machine(results, e), results.get("machine") or {}) else " †"
        row += [" / ".join(_f(ms[t][0]) + (" c" if ms[t][1] else "") for t in ms) + other,
                f"{_f(lat.get('speedup_fp32'), '.2f')}× / {_f(lat.get('speedup_bf16'), '.2f')}×",
                _f(lat.get("peak_rss_mib"), ".0f")]
    else:
        row += ["not measured", DASH, DASH]
    d = _deploy_row(deploy, name)
    if d:
        ms = d["latency"]["ms"]
        agree = DASH if d["int8_agreement"] is None else f"{100 * d['int8_agreement']:.1f} %"
        int8 = d["best"]["int8"]
        row.append(f"{_f(ms.get('ort_fp32'), '.0f')} / " + (f"{_f(ms[int8], '.0f')} ({INT8_PATHS[int8]}) / "
                                                             f"{d['int8_vs_bf16']:.2f}× / {agree}" if int8 else "no int8"))
    else:
        row.append("not measured")
    return row


INDEX_HEADER = ("model", "family", "params (M)", "GFLOPs × views", "published top-1 % (dataset, views)",
                "SynthMotion top-1 % normal / reversed / shuffled (bench run)", "latency ms fp32 / bf16",
                "speed-up vs eager fp32 / bf16", "peak MiB",
                "deployment: onnxruntime fp32 ms / int8 ms (backend) / int8 speed vs bf16 / int8 top-1 agreement")


def _order_table(results: dict) -> List[str]:
    """One row per bench run: cost and the three orders, with chance verdicts."""
    runs: Dict[str, List[str]] = {}
    for name in list_models():
        b = (_entry(results, name) or {}).get("bench")
        if b:
            runs.setdefault(b.get("run", name), []).append(name)
    if not runs:
        return []
    ch = _chance(results)
    rows = []
    for run, names in sorted(runs.items(), key=lambda kv: (_entry(results, kv[1][0])["bench"].get("gflops") or 0)):
        b = _entry(results, names[0])["bench"]
        t1 = b.get("top1", {})
        rows.append([f"`{run}`", ", ".join(names), _f(b.get("gflops"), ".3f"),
                     *(_f(t1.get(o)) for o in ORDERS),
                     _verdict(t1.get("reversed"), ch["chance"], ch["band"]),
                     f"{_f(b.get('twin_acc'))} ({_verdict(b.get('twin_acc'), 50.0, ch['twin_band'])})"])
    note = (f"Chance {_f(ch['chance'])} % ± {_f(ch['band'])} and twin chance 50 % ± {_f(ch['twin_band'])} "
            f"(2 standard errors on the val set). Runs sorted by bench GFLOPs.")
    return ["## SynthMotion bench runs", "",
            *_table(("run", "models", "bench GFLOPs", *ORDERS, "reversed vs chance", "twin accuracy %"), rows),
            "", note, ""]


def render_index(results: Optional[dict], *, source: str = SOURCE, deploy: Optional[dict] = None,
                 notes_dir: Optional[str] = None) -> str:
    """``model_cards/README.md``: every registered model side by side, the plot, how it was measured;
    a hand-written ``notes_dir/README.md`` (options and systems not built as models) under "Notes"."""
    lines = [GENERATED.format(results=source), "", "# Model cards", "",
             "Every registered model side by side. Params and GFLOPs are `model_info`'s reference values per view "
             "at the canonical input (× the test views); the published top-1 is the model's first published "
             "result; SynthMotion and latency columns come from `zoo compare` (latency: batch 1, canonical "
             "input, the faster of `zoo.optimize` and `zoo.optimize(compile=True)`, c: compiled); the deployment "
             "column from `python -m zoo.benchmark.deploy` (same input, measured on its own machine; see each card).", "",
             *_table(INDEX_HEADER, [_index_row(n, results, deploy) for n in list_models()]), ""]
    if not results:
        lines += ["SynthMotion and latency: " + NOT_MEASURED.lower(), ""]
    elif any(not same_machine(latency_machine(results, e), results.get("machine") or {})
             for e in results.get("models", {}).values() if e.get("latency")):
        lines += ["† latency measured on another machine than the other rows (its card names it): compare it with "
                  "them only through its speed-ups.", ""]
    lines += _order_table(results) if results else []
    lines += ["## Accuracy vs GFLOPs", "", f"![accuracy vs GFLOPs]({PLOT_NAME})", "",
              "(a) published top-1 (each model's first result per dataset, one colour per dataset; test views and "
              "crops differ, see the cards) against reference GFLOPs per view; "
              "(b) SynthMotion bench top-1, normal order (filled) and reversed (open), against bench GFLOPs.", "",
              "## How it was measured", "", *_measurement_lines(results), "",
              "## Regenerate", "", "```sh", "zoo compare        # writes " + source,
              "zoo cards          # rewrites model_cards/ from it",
              "zoo cards --check  # exit 1 if a card is stale",
              "```", "", "Hand-written explanations (no numbers) go in `model_cards/notes/<name>.md`; they are "
              "appended to the card under \"Notes\"; `model_cards/notes/README.md` to this page."]
    path = os.path.join(notes_dir, "README.md") if notes_dir else None
    if path and os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            lines += ["", "## Notes", "", f.read().strip()]
    return "\n".join(lines) + "\n"


FAMILIES_START = "<!-- families: generated by `zoo cards` from zoo.model_info and the results; do not edit -->"
FAMILIES_END = "<!-- /families -->"


def _families() -> Dict[str, List[str]]:
    """``{family: its models}``, both in registry order."""
    members: Dict[str, List[str]] = {}
    for name in list_models():
        members.setdefault(model_info(name).family, []).append(name)
    return members


def family_table(results: Optional[dict], cards_dir: str) -> str:
    """One row per family, its first registered model standing for it: the front page's table,
    linking each family's cards under ``cards_dir`` (a path relative to the page)."""
    rows = []
    for family, names in _families().items():
        name, info, e = names[0], model_info(names[0]), _entry(results, names[0])
        lat = (e or {}).get("latency")
        bf16 = fast_path_ms(lat, "bf16") if lat else None
        more = f" (+{len(names) - 1}: [all]({cards_dir}/README.md))" if len(names) > 1 else ""
        top = (_results(name) or [None])[0]
        rows.append([family, f"[{name}]({cards_dir}/{name}.md){more}", f"{top.top1} ({top.dataset})" if top else DASH,
                     f"{_f(info.ref_gflops, '.1f')} × {info.num_views}", _f(info.ref_params_m, ".1f"),
                     _f(bf16[0], ".0f") if bf16 else NOT_MEASURED.lower()])
    header = ("family", "model (card)", "published top-1 % (dataset; protocol on the card)", "GFLOPs × views", "params (M)",
              "CPU latency ms (bf16, batch 1)")
    note = ("Latency: `zoo compare` on the machine of `benchmarks/results/compare.json`, the faster of "
            "`zoo.optimize(model, torch.bfloat16)` and its compiled form, at the canonical input.")
    return "\n".join([FAMILIES_START, "", *_table(header, rows), "", note, FAMILIES_END])


def family_pages(results: Optional[dict], cards_dir: str, deploy: Optional[dict] = None) -> Dict[str, str]:
    """``{family: page}``: per family, what its module says of it (summary, paper) and its models
    side by side as in the cards' table, each linked to its card under ``cards_dir``."""
    pages = {}
    for family, names in _families().items():
        rows = [[f"[{r[0][1:r[0].index(']')]}]({cards_dir}/{n}.md)", *r[2:]]
                for n, r in ((n, _index_row(n, results, deploy)) for n in names)]
        pages[family] = "\n".join([f"# {family}", "", _family_paragraph(names[0]), "",
                                    *_table([INDEX_HEADER[0], *INDEX_HEADER[2:]], rows), ""])
    return pages


def with_family_table(page: str, table: str, path: str) -> str:
    """``page`` (the text of ``path``) with the text between its family-table markers replaced by ``table``."""
    start, end = page.find(FAMILIES_START), page.find(FAMILIES_END)
    if start < 0 or end < start:
        raise UsageError(f"{path} has no family-table markers ({FAMILIES_START} ... {FAMILIES_END}): add them "
                         "where the table goes")
    return page[:start] + table + page[end + len(FAMILIES_END):]


# ---------------------------------------------------------------- plot

def _log_x(ax) -> None:
    from matplotlib.ticker import StrMethodFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    ax.xaxis.set_minor_formatter(StrMethodFormatter("{x:g}"))
    ax.tick_params(axis="x", which="both", labelsize=7)


def _panel_published(ax) -> List[str]:
    """Published top-1 (the first result per dataset) vs reference GFLOPs, one colour per dataset;
    returns the models left out."""
    left_out, by_dataset = [], {}
    for name in list_models():
        info = model_info(name)
        results = _results(name)
        if not results or not info.ref_gflops:
            left_out.append(name)
            continue
        for dataset in dict.fromkeys(r.dataset for r in results):
            top1 = next(r.top1 for r in results if r.dataset == dataset)
            by_dataset.setdefault(dataset, []).append((info.ref_gflops, top1, name))
    for dataset, pts in sorted(by_dataset.items()):
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], label=dataset, s=30)
        for x, y, n in pts:
            ax.annotate(n, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel="GFLOPs per view (fvcore, reference)", ylabel="published top-1 %",
           title="(a) published accuracy (protocols differ: see the cards)")
    _log_x(ax)
    ax.legend(fontsize=7, title="dataset", title_fontsize=7)
    return left_out


def _panel_bench(ax, results: Optional[dict]) -> None:
    """SynthMotion top-1 (normal, filled; reversed, open) vs bench GFLOPs, one point per bench run."""
    runs = {}
    for name in list_models():
        b = (_entry(results, name) or {}).get("bench")
        if b and b.get("gflops"):
            runs.setdefault(b.get("run", name), (b, []))[1].append(name)
    ax.set(xlabel="GFLOPs per clip (fvcore, bench model)", ylabel="SynthMotion top-1 %",
           title="(b) SynthMotion bench")
    if not runs:
        ax.text(0.5, 0.5, "not measured yet —\nrun `zoo compare`", ha="center", va="center", transform=ax.transAxes)
        return
    for run, (b, names) in sorted(runs.items()):
        x, t1 = b["gflops"], b.get("top1", {})
        ax.plot([x, x], [t1.get("normal"), t1.get("reversed")], color="0.8", zorder=1)
        ax.scatter([x], [t1.get("normal")], color="C0", zorder=2)
        ax.scatter([x], [t1.get("reversed")], facecolors="none", edgecolors="C3", zorder=2)
        ax.annotate(" = ".join(names), (x, t1.get("normal")), fontsize=6, xytext=(3, 3), textcoords="offset points")
    chance = _chance(results)["chance"]
    if chance:
        ax.axhline(chance, ls="--", color="0.5", lw=0.8, label=f"chance {chance:.0f} %")
    ax.scatter([], [], color="C0", label="normal order")
    ax.scatter([], [], facecolors="none", edgecolors="C3", label="reversed order")
    _log_x(ax)
    ax.legend(fontsize=7)


def plot(results: Optional[dict], path: str) -> str:
    """Write the two-panel accuracy-vs-GFLOPs PNG to ``path`` (atomically); returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5.5))
    FigureCanvasAgg(fig)
    ax_a, ax_b = fig.subplots(1, 2)
    left_out = _panel_published(ax_a)
    _panel_bench(ax_b, results)
    if left_out:
        fig.text(0.01, 0.01, "No published number (left out of (a)): " + ", ".join(left_out), fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    atomic_write(path, "wb", lambda f: fig.savefig(f, format="png", dpi=120))
    return path


# ---------------------------------------------------------------- files

def render_all(results: Optional[dict], out_dir: str, source: str = SOURCE, deploy: Optional[dict] = None
               ) -> Dict[str, str]:
    """{path: text} of every card and the index under ``out_dir`` (notes read from ``out_dir/notes``)."""
    notes = os.path.join(out_dir, "notes")
    files = {os.path.join(out_dir, f"{n}.md"): render_card(n, results, notes, source=source, deploy=deploy)
             for n in list_models()}
    files[os.path.join(out_dir, "README.md")] = render_index(results, source=source, deploy=deploy, notes_dir=notes)
    return files


def _source(results_path: Optional[str], out_dir: str) -> str:
    """``results_path`` as the cards name it: relative to the directory holding ``out_dir``."""
    if not results_path:
        return SOURCE
    return os.path.relpath(results_path, os.path.dirname(os.path.abspath(out_dir)))


def _readme(results: Optional[dict], out_dir: str, readme: Optional[str]) -> Dict[str, str]:
    """{readme: its text with the family table regenerated}, or nothing without ``readme``."""
    if not readme:
        return {}
    with open(readme, encoding="utf-8") as f:
        page = f.read()
    cards = os.path.relpath(os.path.abspath(out_dir), os.path.dirname(os.path.abspath(readme)))
    return {readme: with_family_table(page, family_table(results, cards), readme)}


def write_cards(results_path: Optional[str], out_dir: str, deploy_path: Optional[str] = None,
                readme: Optional[str] = None) -> List[str]:
    """Write every card, the index and the plot under ``out_dir``, and the family table into the
    page ``readme`` (between its markers); returns the files written."""
    results = load_results(results_path)
    files = render_all(results, out_dir, _source(results_path, out_dir), load_results(deploy_path))
    files.update(_readme(results, out_dir, readme))
    for path, text in files.items():
        atomic_write_text(path, text)
    return [*files, plot(results, os.path.join(out_dir, PLOT_NAME))]


def stale_cards(results_path: Optional[str], out_dir: str, deploy_path: Optional[str] = None,
                readme: Optional[str] = None) -> List[str]:
    """Problems with the cards under ``out_dir`` (and the family table of ``readme``): missing or
    stale files, cards of unregistered models."""
    problems = []
    results = load_results(results_path)
    files = render_all(results, out_dir, _source(results_path, out_dir), load_results(deploy_path))
    for path, text in {**files, **_readme(results, out_dir, readme)}.items():
        if not os.path.isfile(path):
            problems.append(f"missing: {path}")
        else:
            with open(path) as f:
                if f.read() != text:
                    problems.append(f"stale: {path}")
    registered = set(list_models()) | {"README"}
    if os.path.isdir(out_dir):
        problems += [f"not a registered model: {os.path.join(out_dir, f)}" for f in sorted(os.listdir(out_dir))
                     if f.endswith(".md") and f[:-3] not in registered]
    if not os.path.isfile(os.path.join(out_dir, PLOT_NAME)):
        problems.append(f"missing: {os.path.join(out_dir, PLOT_NAME)}")
    return problems
