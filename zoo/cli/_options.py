"""Options shared by several commands (eval, predict, features, train): which model, which weights,
which input protocol, and how to run it; and how a ``--run-dir`` fills them in."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from .._errors import InputNotFound
from . import UsageError

__all__ = ["add_model_options", "check_positive", "resolve_model_options", "take_release", "parse_kv", "data_error_types", "compile_mode",
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


def weights_label(opts: Dict[str, Any]) -> str:
    """What a prediction ran with, for its printout and files: ``model.tag``, the weights file(s),
    or that the weights are random."""
    if opts["pretrained"]:
        return f"{opts['model']}.{opts['pretrained']}"
    given = [opts["weights"]] if isinstance(opts["weights"], str) else list(opts["weights"] or [])
    return ",".join(map(str, given)) if given else f"{opts['model']} (random weights)"


def resolve_model_options(args) -> Dict[str, Any]:
    """Merge ``--run-dir DIR`` with explicit flags into model name, weights, model_args, frames, size."""
    from ..models import model_info

    check_positive(args)
    opts: Dict[str, Any] = {"model": getattr(args, "model", None), "weights": args.weights,
                            "model_args": parse_kv(args.model_arg), "frames": args.frames, "size": args.size,
                            "classes": None, "data": None, "data_root": None, "fold": None, "protocol": {},
                            "pretrained": getattr(args, "pretrained", None)}
    if opts["pretrained"] and (opts["weights"] or args.run_dir):
        raise UsageError("--pretrained takes the released weights: pass --weights / --run-dir or --pretrained, not both")
    if args.run_dir:
        cfg_path = os.path.join(args.run_dir, "config.yaml")
        if not os.path.isfile(cfg_path):
            raise InputNotFound(f"--run-dir {args.run_dir!r}: no config.yaml there "
                                    f"(is it a `zoo train` output directory?)")
        import yaml

        try:
            with open(cfg_path) as f:
                cfg = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:  # invalid, or unsafe (a python/object tag): never constructed
            raise UsageError(f"--run-dir {args.run_dir!r}: {cfg_path} is not valid safe YAML "
                             f"({str(e).splitlines()[0]}); fix it, or pass MODEL and --weights instead") from None
        if not isinstance(cfg, dict):
            raise UsageError(f"--run-dir {args.run_dir!r}: {cfg_path} must hold a mapping of key: value")
        opts["model"] = opts["model"] or cfg.get("model")
        opts["model_args"] = {**(cfg.get("model_args") or {}), **opts["model_args"]}
        opts["frames"] = opts["frames"] or cfg.get("frames")
        opts["size"] = opts["size"] or cfg.get("size")
        opts["data"] = cfg.get("val_data") or cfg.get("data")
        opts["data_root"] = cfg.get("data_root")
        opts["fold"] = cfg.get("split")
        if not opts["weights"]:
            w = os.path.join(args.run_dir, "model.pt")
            if not os.path.isfile(w):
                raise InputNotFound(f"--run-dir {args.run_dir!r}: no model.pt (the run has not finished; pass "
                                        f"--weights {os.path.join(args.run_dir, 'last.pt')} for its last epoch)")
            opts["weights"] = [w]
        classes = os.path.join(args.run_dir, "classes.txt")
        if os.path.isfile(classes):
            with open(classes) as f:
                opts["classes"] = [line.strip() for line in f if line.strip()]
    for w in opts["weights"] or []:
        if "://" not in w and not os.path.exists(w):
            raise InputNotFound(f"weights file {w!r} does not exist")
    if opts["weights"] and len(opts["weights"]) == 1:
        opts["weights"] = opts["weights"][0]
        if "://" not in opts["weights"]:
            _take_identity(opts)
    if not opts["model"]:
        raise UsageError("name a model (e.g. tsm_r50), or pass --run-dir DIR of a training run or --weights FILE "
                         "of a zoo checkpoint")
    info = model_info(opts["model"])  # an unknown name raises KeyError with close matches
    if opts["pretrained"]:
        take_release(opts, info)
    return opts


def _take_identity(opts: Dict[str, Any]) -> None:
    """Fill model, options, clip length, size and class names from a zoo checkpoint's identity
    (explicit flags win)."""
    from ..models import model_info, peek_identity

    identity = peek_identity(opts["weights"])
    if identity is None:
        return
    saved = identity.get("model")
    if opts["model"] and saved and model_info(opts["model"]).name != saved:
        raise UsageError(f"{opts['weights']} is a {saved} checkpoint, not {opts['model']}: name {saved} (or no model)")
    opts["model"] = opts["model"] or saved
    opts["model_args"] = {**(identity.get("model_args") or {}), **opts["model_args"]}
    protocol = identity.get("input") or {}
    opts["frames"] = opts["frames"] or protocol.get("num_frames")
    opts["size"] = opts["size"] or protocol.get("crop_size")
    opts["protocol"] = {k: tuple(v) if isinstance(v, list) else v for k, v in protocol.items()
                        if k in ("mean", "std", "sampling", "sampling_rate")}
    opts["classes"] = opts["classes"] or (list(identity.get("categories") or []) or None)


def take_release(opts: Dict[str, Any], info) -> None:
    """Options, protocol and class names of the released weights ``--pretrained`` names."""
    from ..models import weights_info

    tag = opts["pretrained"]
    record = weights_info(info.name + (f".{tag}" if isinstance(tag, str) else ""))
    opts["pretrained"] = record.tag
    opts["model_args"] = {**record.model_args, **opts["model_args"]}
    opts["protocol"] = dict(record.input_args)
    opts["eval_args"] = dict(record.eval_args)
    frames = record.input_args.get("num_frames")
    if info.frames_arg and info.frames_arg in record.model_args:
        value = record.model_args[info.frames_arg]
        frames = value * info.segment_length if info.frames_arg == "num_segments" else value
    opts["frames"] = opts["frames"] or frames
    opts["classes"] = opts["classes"] or (list(record.categories) or None)


def data_error_types():
    """Errors of the data pipeline that a user fixes (an unreadable or mislabelled video)."""
    from ..data import DataError, DecodeError
    return (DataError, DecodeError)
