"""``zoo convert``: an official checkpoint -> a zoo checkpoint, through the family's filter."""
from __future__ import annotations

import os
from typing import List, Optional, Tuple

from .._errors import BadCheckpoint, InputNotFound
from .._files import prepare_output_file
from . import UsageError

__all__ = ["register", "convert_checkpoint"]


def _candidates(family: Optional[str], model: Optional[str]) -> List[str]:
    from ..models import list_models, model_info

    if model:
        info = model_info(model)
        if family and info.family != family:
            raise UsageError(f"--model {model} is of family {info.family!r}, not {family!r}")
        return [info.name]
    families = sorted({model_info(n).family for n in list_models()})
    if family not in families:
        raise UsageError(f"unknown family {family!r}; families: {', '.join(families)}")
    return [n for n in list_models() if model_info(n).family == family]


def convert_checkpoint(srcs: List[str], dst: str, *, family: Optional[str] = None, model: Optional[str] = None,
                       num_classes: Optional[int] = None) -> Tuple[str, int, object, List[str]]:
    """Convert ``srcs`` (one file, or several for multi-file releases) into a zoo checkpoint at ``dst``.

    Reads them once, then tries the named ``model``, else every model of ``family``
    (`zoo.models.build_with_checkpoint`: the classifier sized from the checkpoint unless
    ``num_classes`` is given); a file that loads into several models of the family is refused
    (TSN and TSM share their keys). Writes a zoo checkpoint: the state dict with the model's
    identity, and the options, class names and protocol of the release when the source is a
    release file zoo knows (by its name or sha256, `zoo.resolve`). Returns (model name,
    num_classes, LoadReport, release name or None).
    """
    from ..engine.checkpoint import atomic_save
    from ..models import build_with_checkpoint, instantiate, read_weights, resolve, zoo_checkpoint

    raw = read_weights(srcs if len(srcs) > 1 else srcs[0])
    failures, loaded = [], []
    for name in _candidates(family, model):
        try:
            m = build_with_checkpoint(name, raw, num_classes=num_classes)
        except (BadCheckpoint, UsageError) as e:  # the file is not this model's: try the next candidate
            failures.append(f"{name}: {e}")
            continue
        loaded.append((name, m, m.load_report))
    if not loaded:
        raise BadCheckpoint(f"{', '.join(srcs)} does not load into any candidate model -- " + " || ".join(failures))
    if len(loaded) > 1:
        raise BadCheckpoint(f"{', '.join(srcs)} loads into {len(loaded)} models of family {family!r} "
                         f"({', '.join(n for n, _, _ in loaded)}: the same keys): pass --model NAME")
    name, m, report = loaded[0]
    if report.reinitialised:
        raise BadCheckpoint(f"{name}: classifier {', '.join(report.reinitialised)} has the wrong size; pass "
                         f"--num-classes to match the checkpoint")
    spec = resolve(name, weights=list(srcs) if len(srcs) > 1 else srcs[0], num_classes=num_classes)
    if spec.record is not None:  # a known release: built with its options, protocol and class names
        m = instantiate(spec, checkpoint=raw)
    atomic_save(zoo_checkpoint(m), dst)
    return name, m.num_classes, report, spec.weights_tag


def cmd_convert(args) -> int:
    if len(args.paths) < 2:
        raise UsageError("give SRC [SRC...] DST: the official checkpoint file(s) and the output path")
    if not args.family and not args.model:
        raise UsageError("pass --family F (e.g. tsm) or --model NAME to choose the key mapping")
    *srcs, dst = args.paths
    for s in srcs:
        if "://" not in s and not os.path.isfile(s):
            raise InputNotFound(f"source checkpoint {s!r} does not exist")
    if os.path.exists(dst) and not args.force:
        raise UsageError(f"{dst!r} already exists (pass --force to overwrite)")
    prepare_output_file(dst, "DST")
    name, classes, report, release = convert_checkpoint(srcs, dst, family=args.family, model=args.model,
                                                        num_classes=args.num_classes)
    print(f"{' + '.join(srcs)} -> {dst}")
    print(f"model: {name} ({classes} classes)   {report}")
    print("missing keys: none; unexpected keys: none")
    if release:
        print(f"release: {release} (its class names and test protocol are stored in {dst})")
    print(f"load it with: zoo.build({name!r}, weights={dst!r})  # {classes} classes, from the checkpoint")
    return 0


def register(sub):
    p = sub.add_parser(
        "convert", help="convert an official checkpoint into a zoo checkpoint",
        description="Map an official checkpoint (TSM/PAN .pth(.tar), PySlowFast .pyth, ...) onto a zoo model with "
                    "its family's checkpoint filter and load it strictly: any missing, unexpected or mis-shaped "
                    "key is reported and nothing is written. The output is a zoo checkpoint (state dict + model name, "
                    "options, class names, input protocol) that zoo.build(MODEL, weights=DST) and --weights load.")
    p.add_argument("paths", nargs="+", metavar="SRC [SRC ...] DST",
                   help="official file(s) (several for multi-file releases such as PAN Full) then the output")
    p.add_argument("--family", help="model family whose key mapping to use (see `zoo info MODEL`)")
    p.add_argument("--model", help="the exact model to load into (default: the one model of --family that fits; "
                                   "a file that fits several is refused)")
    p.add_argument("--num-classes", type=int, help="classifier size (default: read from the checkpoint)")
    p.add_argument("--force", action="store_true", help="overwrite DST")
    p.set_defaults(func=cmd_convert)
