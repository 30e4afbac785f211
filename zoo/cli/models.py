"""``zoo list``, ``zoo info``, ``zoo flops``: what the registry holds."""
from __future__ import annotations

import dataclasses

from . import UsageError


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def registry_table(pattern: str = "*", *, measure: bool = True) -> str:
    """Name, params (M), GFLOPs at the canonical input (fvcore), input shape for each model."""
    from ..flops import FLOP_CONVENTION, count_flops, count_params
    from ..models import build, list_models, model_info

    rows = [("model", "params (M)", "GFLOPs", "ref GFLOPs", "input [B, C, T, H, W]", "views")]
    for name in list_models(pattern):
        info = model_info(name)
        params = gflops = None
        if measure:
            model = build(name)
            params = count_params(model) / 1e6
            gflops = count_flops(model, (1, *info.input_shape)).gflops
        rows.append((name, _fmt(params, ".2f"), _fmt(gflops, ".2f"), _fmt(info.ref_gflops, ".2f"),
                     str([1, *info.input_shape]), f"{info.test_views[0]}x{info.test_views[1]}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + f"\nGFLOPs per view; {FLOP_CONVENTION}."


def cmd_list(args):
    from ..models import list_models, model_aliases

    names = list_models(args.pattern)
    if not names:
        raise UsageError(f"no model matches {args.pattern!r}; all models: {', '.join(list_models())}")
    if args.measure:
        print(registry_table(args.pattern))
    else:
        print("\n".join(names))
    aliases = {a: n for a, n in model_aliases().items() if n in names}
    if aliases:
        print("aliases: " + ", ".join(f"{a} -> {n}" for a, n in sorted(aliases.items())))
    return 0


def cmd_info(args):
    from ..models import bench_preset, model_info, model_weights

    info = model_info(args.name)
    for f in dataclasses.fields(info):
        print(f"{f.name:>18}: {getattr(info, f.name)}")
    print(f"{'input_shape':>18}: {list(info.input_shape)}")
    print(f"{'value_range':>18}: {info.value_range}")
    bench = bench_preset(info.name)
    print(f"{'bench':>18}: frames {bench.frames}, model_args {dict(bench.model_args)}")
    weights = model_weights(info.name)
    print(f"{'weights':>18}: {len(weights) or '-'}")
    for w in weights:
        print(f"    {w.name}: {w.dataset}, {w.num_classes} classes, {w.source or '-'}")
        for file, digest in zip(w.files, w.hashes):
            print(f"        file: {file}" + (f" (sha256 {digest})" if digest else ""))
        if w.page:
            print(f"        fetch by hand from: {w.page}")
        for r in w.results:
            print(f"        {r.dataset}: top-1 {r.top1}" + (f" / top-5 {r.top5}" if r.top5 else "")
                  + f" ({r.views}; {r.source})")
        if w.notes:
            print(f"        notes: {w.notes}")
    return 0


def cmd_flops(args):
    from ..flops import FLOP_CONVENTION, count_flops, count_params
    from ..models import build, model_info, resolve
    from ._options import check_positive

    check_positive(args, ("frames", "size", "depth"))
    info = model_info(args.name)
    # --frames reaches the constructor argument it fixes (segments, a head's pooling window)
    spec = resolve(args.name, frames=args.frames)
    model = build(spec)
    c, t, h, w = spec.info.input_shape
    h = w = args.size or h
    shape = (1, c, t, h, w)
    report = count_flops(model, shape, table_depth=args.depth)
    print(report.table)
    print(f"\nmodel: {args.name}    input: {list(shape)} (batch, channels, frames, height, width)")
    print(f"params: {count_params(model) / 1e6:.3f} M")
    print(f"total: {report.gflops:.3f} GFLOPs per view"
          + (f" (reference {info.ref_gflops})" if info.ref_gflops and (t, h) == info.input_shape[1:3] else ""))
    print(f"convention: {FLOP_CONVENTION}")
    return 0


def register(sub):
    p = sub.add_parser("list", help="list registered models (fnmatch PATTERN)",
                       description="List registered models whose names match PATTERN (fnmatch wildcards).")
    p.add_argument("pattern", nargs="?", default="*", help="e.g. 'tsm_*' (default: all)")
    p.add_argument("--measure", action="store_true", help="also build each model and count params/GFLOPs")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", help="show a model's info record (input protocol, reference results)")
    p.add_argument("name")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("flops", help="fvcore FLOP table for a model at its canonical or a given input",
                       description="Count FLOPs with fvcore (1 multiply-add = 1 FLOP).")
    p.add_argument("name")
    p.add_argument("--frames", type=int, help="T (default: the model's canonical number of frames)")
    p.add_argument("--size", type=int, help="crop size H=W (default: the model's canonical crop)")
    p.add_argument("--depth", type=int, default=2, help="module depth of the table (default 2)")
    p.set_defaults(func=cmd_flops)
