"""Options shared by several commands (eval, predict, features, train): which model, which weights,
which input protocol, and how to run it; and how a ``--run-dir`` fills them in."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from .._errors import InputNotFound
from . import UsageError

__all__ = ["add_model_options", "check_positive", "model_spec", "load_model", "warn_if_untrained", "parse_kv", "data_error_types", "compile_mode",
           "COMPILE_MODES"]

COMPILE_MODES = {"off": False, "on": True, "auto": "auto"}  # --compile -> zoo.optimize(compile=...)


def parse_kv(items: Optional[List[str]], what: str = "--model-arg") -> Dict[str, Any]:
    """``["backbone=resnet18", "dropout=0.2"]`` -> dict, values parsed as YAML scalars."""
    out: Dict[str, Any] = {}
    for item in items or []:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"{what} {item!r} must look like KEY=VALUE (e.g. backbone=resnet18)")
        import yaml

        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def check_positive(args, names=("frames", "size")) -> None:
    """`UsageError` for a flag among ``names`` given as 0 or less (``--frames 0`` is no default)."""
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def add_model_options(p, *, views: bool = True) -> None:
    """Options shared by eval/predict/features: which model, which weights, which input protocol."""
    g = p.add_argument_group("model")
    g.add_argument("--pretrained", nargs="?", const=True, metavar="TAG",
                   help="the model's released weights: its default tag, or TAG (see `zoo weights`); downloaded "
                        "and hash-checked once into $ZOO_CACHE_DIR/weights (ZOO_WEIGHTS_MIRROR is tried first)")
    g.add_argument("--weights", action="append", metavar="W",
                   help="checkpoint path or URL: a zoo checkpoint (it names its model, options and classes) or an "
                        "official one (mapped by the family's filter); repeat the option for multi-file releases "
                        "(e.g. PAN Full: RGB then PA)")
    g.add_argument("--run-dir", metavar="DIR",
                   help="a `zoo train` output directory: takes the model, its options and DIR/model.pt from it")
    g.add_argument("--model-arg", action="append", metavar="KEY=VALUE",
                   help="architecture override passed to zoo.build (repeatable), e.g. backbone=resnet18")
    g.add_argument("--frames", type=int, help="frames per clip (segments for TSN/TSM/PAN); default: the model's")
    g.add_argument("--size", type=int, help="crop size in pixels (the resize scales with it); default: the model's")
    if views:
        g.add_argument("--views", metavar="CLIPSxCROPS",
                       help="test views per video, e.g. 2x3 (default: the model's info.test_views)")
    g.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: GPU if available)")
    g.add_argument("--no-optimize", action="store_true",
                   help="run the model as built (eager fp32, default layout) instead of the CPU fast path "
                        "(zoo.optimize: BN folded into convs, channels-last, bf16 with --amp bf16)")
    g.add_argument("--compile", choices=tuple(COMPILE_MODES), default="off",
                   help="torch.compile the fast path (inductor with weight freezing; needs a C compiler and "
                        "takes 5-60 s at the first batch): on, or auto = only where it runs one canonical clip "
                        "faster (default off)")


def compile_mode(args):
    """``zoo.optimize``'s ``compile`` argument from ``--compile`` (refused with ``--no-optimize``)."""
    if args.compile != "off" and args.no_optimize:
        raise UsageError(f"--compile {args.compile} compiles the fast path: drop --no-optimize, or drop --compile")
    return COMPILE_MODES[args.compile]


def model_spec(args, *, num_classes: Optional[int] = None, model_args: Optional[Dict[str, Any]] = None,
               quiet: bool = False) -> Tuple[Any, Dict[str, Any]]:
    """The `zoo.Spec` of the model options of ``args`` (MODEL, ``--weights`` / ``--pretrained``,
    ``--run-dir``, ``--model-arg``, ``--frames``, ``--size``, ``--views``), resolved by
    `zoo.resolve`; and what a ``--run-dir`` says of its data (``data``, ``data_root``, ``fold``,
    ``classes``). ``model_args`` are further options (a release's test head). What was recognised
    (a release file given by path) is printed unless ``quiet``."""
    from ..engine.config import parse_views
    from ..models import resolve

    check_positive(args)
    name, weights, pretrained = getattr(args, "model", None), args.weights, getattr(args, "pretrained", None)
    given, frames, size = parse_kv(args.model_arg), args.frames, args.size
    extra: Dict[str, Any] = {"data": None, "data_root": None, "fold": None, "classes": None}
    if pretrained and (weights or args.run_dir):
        raise UsageError("--pretrained takes the released weights: pass --weights / --run-dir or --pretrained, not both")
    if args.run_dir:
        cfg = _run_config(args.run_dir)
        name = name or cfg.get("model")
        given = {**(cfg.get("model_args") or {}), **given}
        frames = frames or cfg.get("frames")
        size = size or cfg.get("size")
        extra.update(data=cfg.get("val_data") or cfg.get("data"), data_root=cfg.get("data_root"), fold=cfg.get("split"))
        if not weights:
            w = os.path.join(args.run_dir, "model.pt")
            if not os.path.isfile(w):
                raise InputNotFound(f"--run-dir {args.run_dir!r}: no model.pt (the run has not finished; pass "
                                    f"--weights {os.path.join(args.run_dir, 'last.pt')} for its last epoch)")
            weights = [w]
        classes = os.path.join(args.run_dir, "classes.txt")
        if os.path.isfile(classes):
            with open(classes, encoding="utf-8") as f:
                extra["classes"] = [line.strip() for line in f if line.strip()]
    views = parse_views(args.views) if getattr(args, "views", None) else None
    if weights is not None and len(weights) == 1:
        weights = weights[0]
    if name is None and not weights:
        raise UsageError("name a model (e.g. tsm_r50), or pass --run-dir DIR of a training run or --weights FILE "
                         "of a zoo checkpoint")
    spec = resolve(name, weights=weights, pretrained=pretrained, frames=frames, size=size, views=views,
                   num_classes=num_classes, **{**given, **(model_args or {})})
    if not quiet:
        for note in spec.notes:
            print(note)
    extra["classes"] = extra["classes"] or list(spec.categories) or None
    return spec, extra


def _run_config(run_dir: str) -> Dict[str, Any]:
    cfg_path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(cfg_path):
        raise InputNotFound(f"--run-dir {run_dir!r}: no config.yaml there (is it a `zoo train` output directory?)")
    import yaml

    try:
        with open(cfg_path) as f:
            cfg = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:  # invalid, or unsafe (a python/object tag): never constructed
        raise UsageError(f"--run-dir {run_dir!r}: {cfg_path} is not valid safe YAML "
                         f"({str(e).splitlines()[0]}); fix it, or pass MODEL and --weights instead") from None
    if not isinstance(cfg, dict):
        raise UsageError(f"--run-dir {run_dir!r}: {cfg_path} must hold a mapping of key: value")
    return cfg


def load_model(args, labels: Optional[List[str]] = None):
    """The model of ``args`` (eval mode, on its device, the CPU fast path unless --no-optimize), its
    resolved `zoo.Spec` (the input protocol: ``spec.info``), its class names and the device."""
    from ..engine import distributed as dist_utils
    import torch

    from ..engine.prepare import build_checked, check_clips_fit, prepare_for_inference

    # without a label map the classifier size follows the checkpoint (or the model's default)
    spec, extra = model_spec(args, num_classes=len(labels) if labels else None)
    labels = labels or extra["classes"]
    if labels and spec.num_classes != len(labels):
        spec = spec.with_classes(len(labels))
    views = spec.info.test_views
    if getattr(args, "views", None):  # a video's views run in one forward pass
        check_clips_fit(spec.info, views[0] * views[1], what=f"--views {views[0]}x{views[1]}")
    device = dist_utils.default_device(args.device)
    built = build_checked(spec, strict_classifier=True)
    names = list(labels or built.categories or [str(i) for i in range(built.num_classes)])
    dtype = torch.bfloat16 if getattr(args, "dtype", "fp32") == "bf16" else torch.float32
    return (prepare_for_inference(built, device, fast=not args.no_optimize, compile=compile_mode(args), dtype=dtype),
            spec, names, device)


def warn_if_untrained(spec) -> None:
    if not spec.has_weights:
        print("warning: no --weights or --pretrained: the model is randomly initialised, the prediction is "
              "meaningless")


def data_error_types():
    """Errors of the data pipeline that a user fixes (an unreadable or mislabelled video)."""
    from ..data import DataError, DecodeError
    return (DataError, DecodeError)
