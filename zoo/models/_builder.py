"""`build`: construct a registered model and load a checkpoint through its family's filter."""
from __future__ import annotations

import io
import os
import pickle
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn

from .._errors import BadCheckpoint, InputNotFound, UnknownName, UsageError
from .._files import WriteError
from ._info import Weights
from ._registry import get_entry, weights_info

__all__ = ["build", "build_with_checkpoint", "build_pretrained", "zoo_checkpoint", "checkpoint_identity", "peek_identity",
           "read_checkpoint", "read_weights", "CheckpointMismatch", "first_line", "register_checkpoint_reader",
           "unwrap_state_dict", "load_state_dict_checked", "classifier_size", "LoadReport", "check_input"]


PathLike = Union[str, os.PathLike]


# File suffix -> reader for checkpoint formats torch.load cannot read (e.g. Caffe2 pickles).
_READERS: Dict[str, Callable[[io.BytesIO], Any]] = {}


def register_checkpoint_reader(suffix: str, reader: Callable[[io.BytesIO], Any]) -> None:
    """Read files ending in ``suffix`` with ``reader(file_object)`` instead of ``torch.load``.

    Readers must be as safe as ``weights_only=True``: plain data only, no arbitrary objects.
    """
    _READERS[suffix.lower()] = reader


def read_checkpoint(path: PathLike, *, progress: bool = True) -> Any:
    """Read a checkpoint from a local path or URL with ``torch.load(weights_only=True)`` (or a
    registered safe reader for formats such as PySlowFast's Caffe2 ``.pkl``). A URL is downloaded
    with timeouts into the weights cache (`zoo.models._hub.fetch_url`)."""
    path = os.fspath(path)
    if "://" in path:
        from ._hub import fetch_url
        local = str(fetch_url(path, progress=progress))
    else:
        local = path
    if not os.path.isfile(local):
        raise InputNotFound(f"checkpoint {path!r} does not exist")
    with open(local, "rb") as f:
        data = f.read()
    for suffix, reader in _READERS.items():
        if path.lower().endswith(suffix):
            try:
                return reader(io.BytesIO(data))
            except Exception as e:  # a registered reader's own errors: the file is not in its format
                raise BadCheckpoint(f"cannot read checkpoint {path!r}: {first_line(e)}") from None
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # a class weights_only refuses: read it as plain data below
        pass
    except Exception as e:  # whatever torch raises for a file that is not a checkpoint
        raise BadCheckpoint(f"cannot read checkpoint {path!r} with torch.load(weights_only=True): "
                         f"{first_line(e)}") from None
    try:  # e.g. MMAction2 / mmengine files: their `meta` holds objects weights_only refuses
        return load_plain_data(data)
    except Exception as e:  # as above: not a checkpoint torch can read
        raise BadCheckpoint(f"cannot read checkpoint {path!r} (plain data and tensors only): {first_line(e)}") from None


def first_line(e: BaseException) -> str:
    """One line of why ``e`` happened: the first of its message, or for ``torch.load``'s refusal of
    a pickled object the class it refused (its message is paragraphs of advice to load unsafely)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
    refused = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if refused:
        return f"it holds a pickled {refused.group(1)} object, which a safe load refuses"
    return text.splitlines()[0] if text else type(e).__name__


class _Opaque:
    """Stand-in for an object of a class the restricted reader does not admit: built from nothing
    (no import, no constructor, no ``__setstate__`` of the real class runs), keeps nothing."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __repr__(self):
        return f"<not loaded: {type(self).__qualname__}>"


# what a state dict needs: tensors, their storages (torch maps those itself), containers, dtypes
_ADMITTED = {("torch._utils", n) for n in ("_rebuild_tensor_v2", "_rebuild_tensor", "_rebuild_parameter",
                                         "_rebuild_parameter_with_state")}
_ADMITTED |= {("collections", "OrderedDict"), ("torch", "Size"), ("torch", "device"),
              ("torch._tensor", "_rebuild_from_type_v2"), ("torch.nn.parameter", "Parameter")}


class _PlainDataUnpickler(pickle.Unpickler):
    """Admits tensors and plain containers; any other class becomes an inert `_Opaque` (mmengine
    checkpoints keep ``meta`` objects such as message hubs and numpy scalars beside the weights)."""

    def find_class(self, module, name):
        if (module, name) in _ADMITTED or (module == "torch" and isinstance(getattr(torch, name, None), torch.dtype)):
            return super().find_class(module, name)
        if module == "builtins" and name in ("set", "frozenset", "slice", "complex"):
            return super().find_class(module, name)
        return type(f"{module}.{name}", (_Opaque,), {})


class _PlainDataPickle:
    """A ``pickle_module`` for ``torch.load`` whose unpickler is `_PlainDataUnpickler`."""

    Unpickler = _PlainDataUnpickler
    load = staticmethod(lambda f, **kw: _PlainDataUnpickler(f, **kw).load())


def load_plain_data(data: bytes) -> Any:
    """``torch.load`` of a checkpoint whose non-tensor objects ``weights_only=True`` refuses: they
    load as inert placeholders; nothing outside tensors and plain containers is imported or run."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False, pickle_module=_PlainDataPickle)


def rename_keys(state_dict: Dict[str, Any], renames) -> Dict[str, Any]:
    """Apply ``(compiled pattern, replacement)`` pairs in order to every key (official layouts)."""
    out = {}
    for k, v in state_dict.items():
        for pattern, repl in renames:
            k = pattern.sub(repl, k)
        out[k] = v
    return out


CONTAINER_KEYS = ("state_dict", "model_state", "model")


def unwrap_state_dict(checkpoint, *, strip_prefixes: Sequence[str] = ("module.",),
                      family: str = "a") -> Dict[str, Any]:
    """The state dict inside a training checkpoint.

    Unwraps ``{'state_dict' | 'model_state' | 'model': ...}`` containers (TSM/PAN, PySlowFast,
    generic trainers) and strips a prefix carried by every key (``module.`` from DataParallel).
    """
    state_dict = checkpoint
    if isinstance(state_dict, dict):
        for key in CONTAINER_KEYS:
            if isinstance(state_dict.get(key), dict):
                state_dict = state_dict[key]
                break
    if not isinstance(state_dict, dict):
        raise BadCheckpoint(f"{family} checkpoint must be a state dict or a {{'state_dict': ...}} container, "
                         f"got {type(checkpoint).__name__}")
    for prefix in strip_prefixes:
        if state_dict and all(k.startswith(prefix) for k in state_dict):
            state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
    return state_dict


class CheckpointMismatch(BadCheckpoint, RuntimeError):
    """A checkpoint whose tensors do not fit the model built (missing, unexpected or mis-shaped
    keys): a user's file that belongs to another model or other options."""


@dataclass
class LoadReport:
    loaded: List[str] = field(default_factory=list)
    reinitialised: List[str] = field(default_factory=list)  # classifier keys skipped for a new num_classes
    filled: List[str] = field(default_factory=list)  # num_batches_tracked absent from old checkpoints

    def __str__(self):
        s = f"loaded {len(self.loaded)} tensors"
        if self.reinitialised:
            s += f"; re-initialised classifier ({', '.join(self.reinitialised)})"
        if self.filled:
            s += f"; {len(self.filled)} BN step counters absent, kept at default"
        return s


def _classifier_keys(model: nn.Module) -> List[str]:
    heads = model.get_classifier() if hasattr(model, "get_classifier") else []
    heads = heads if isinstance(heads, (list, tuple)) else [heads]
    ids = {id(h) for h in heads}
    keys = []
    for name, module in model.named_modules():
        if id(module) in ids:
            keys += [f"{name}.{k}" for k in module.state_dict()]
    return keys


def load_state_dict_checked(model: nn.Module, state_dict: Dict[str, torch.Tensor]) -> LoadReport:
    """Load a filtered state dict strictly, except for a classifier whose size differs.

    A classifier whose shape differs from the model's (a new ``num_classes``) keeps its fresh
    initialisation; every other missing, unexpected or mis-shaped key raises ``RuntimeError``
    (`CheckpointMismatch`) with the counts and the first keys of each kind.
    """
    own = model.state_dict()
    head = set(_classifier_keys(model))
    report = LoadReport()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    report.filled = [k for k in missing if k.endswith("num_batches_tracked")]
    missing = [k for k in missing if k not in report.filled]
    mismatched = []
    to_load = {}
    for k, v in state_dict.items():
        if k not in own:
            continue
        if tuple(v.shape) != tuple(own[k].shape):
            if k in head:
                report.reinitialised.append(k)
                continue
            mismatched.append(f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}")
            continue
        to_load[k] = v
    def first(items, sep=", ", n=4):
        return sep.join(items[:n]) + (f"{sep}... ({len(items) - n} more)" if len(items) > n else "")

    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {first(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {first(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches ({len(mismatched)}): {first(mismatched, '; ')}")
    if problems:
        raise CheckpointMismatch("checkpoint does not match the model: " + " | ".join(problems))
    for k in report.reinitialised + report.filled:
        to_load[k] = own[k]
    model.load_state_dict(to_load, strict=True)
    report.loaded = sorted(set(to_load) - set(report.reinitialised) - set(report.filled))
    return report


def classifier_size(model: nn.Module, state_dict: Dict[str, Any]) -> Optional[int]:
    """Outputs of the classifier that ``state_dict`` (in ``model``'s keys) holds, or None."""
    for key in _classifier_keys(model):
        if key.endswith("weight") and isinstance(state_dict.get(key), torch.Tensor):
            return int(state_dict[key].shape[0])
    return None


def read_weights(weights: Union[PathLike, Sequence[PathLike]], *, progress: bool = True) -> Any:
    """`read_checkpoint` of a path or URL, or a list of them for multi-file releases."""
    if isinstance(weights, (list, tuple)):
        return [read_checkpoint(w, progress=progress) for w in weights]
    return read_checkpoint(weights, progress=progress)


COUNT_ARGS = ("num_classes", "num_segments", "num_frames", "frames_per_segment")  # each must be >= 1


def check_counts(args: Dict[str, Any]) -> None:
    """`ValueError` naming the argument unless every count in ``args`` (`COUNT_ARGS`, None = the
    default) is a whole number >= 1: a model of 0 classes or -3 segments is a mistake, not a model."""
    for key in COUNT_ARGS:
        value = args.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) and not (
                isinstance(value, float) and value.is_integer()):
            raise UsageError(f"{key} must be a whole number >= 1, got {value!r}")
        if value < 1:
            raise UsageError(f"{key} must be >= 1, got {value}")


IDENTITY_KEY = "zoo"  # the identity zoo stores beside the state dict of the checkpoints it writes
PROTOCOL_FIELDS = ("num_frames", "num_segments", "frames_per_segment", "centre_frame", "sampling", "sampling_rate",
                   "crop_size", "resize_size", "mean", "std", "test_views")


def checkpoint_identity(checkpoint: Any) -> Optional[Dict[str, Any]]:
    """The identity a zoo checkpoint carries (model, model_args, categories, input protocol), or None."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get(IDENTITY_KEY), dict):
        return checkpoint[IDENTITY_KEY]
    return None


def peek_identity(path: PathLike) -> Optional[Dict[str, Any]]:
    """The identity of a zoo checkpoint file without reading its tensors (memory-mapped), or None
    for any other file."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    return checkpoint_identity(checkpoint)


def zoo_checkpoint(model: nn.Module) -> Dict[str, Any]:
    """``model``'s state dict with its identity (plain data: ``torch.load(weights_only=True)`` reads
    it), so ``zoo.build(weights=FILE)`` rebuilds the same architecture and protocol."""
    info = model.info
    protocol = {k: list(v) if isinstance(v, tuple) else v for k, v in
                ((f, getattr(info, f)) for f in PROTOCOL_FIELDS)}
    identity = {"model": info.name, "model_args": dict(getattr(model, "build_args", {})),
                "num_classes": int(model.num_classes), "categories": list(getattr(model, "categories", ()) or ()),
                "input": protocol}
    return {"state_dict": model.state_dict(), IDENTITY_KEY: identity}


def _apply_identity(name: str, identity: Dict[str, Any], overrides: Dict[str, Any]) -> Dict[str, Any]:
    own = get_entry(name).info.name
    if identity.get("model") not in (None, own):
        raise BadCheckpoint(f"the checkpoint is a {identity['model']} checkpoint, not {own}: build "
                         f"{identity['model']} (zoo: name it, or drop the model name with --weights)")
    return {**(identity.get("model_args") or {}), **overrides}


def build_with_checkpoint(name: str, checkpoint: Any = None, *, num_classes: Optional[int] = None,
                          **overrides) -> nn.Module:
    """Build ``name`` and load ``checkpoint`` (an object `read_checkpoint` returned, or a list of
    them) through the family's filter: the one path from name + checkpoint to a loaded model.

    A zoo checkpoint's identity supplies the architecture options it was saved with (explicit
    ``overrides`` win), its class names (``model.categories``) and its input protocol
    (``model.info``). The classifier size follows the checkpoint unless ``num_classes`` is
    given; a different ``num_classes`` keeps a fresh classifier (with a warning;
    ``model.load_report.reinitialised`` names it) and loads everything else. Any other key
    problem raises ``RuntimeError`` naming the first keys.
    """
    entry = get_entry(name)
    info = entry.info
    check_counts({**overrides, "num_classes": num_classes})
    identity = checkpoint_identity(checkpoint)
    if identity is not None:
        overrides = _apply_identity(name, identity, overrides)
    model = entry.builder(num_classes=info.num_classes if num_classes is None else int(num_classes), **overrides)
    model.build_args = {k: v for k, v in overrides.items() if v is not None}
    model.categories = ()
    if checkpoint is not None:
        state_dict = entry.filter_fn(checkpoint, model) if entry.filter_fn else unwrap_state_dict(checkpoint)
        if not isinstance(state_dict, dict):
            raise ValueError(f"the {info.family} checkpoint filter did not return a state dict")
        found = classifier_size(model, state_dict)
        if num_classes is None and found is not None and found != model.num_classes:
            model.reset_classifier(found)
        try:
            model.load_report = load_state_dict_checked(model, state_dict)
        except CheckpointMismatch as e:
            hint = ("; it was saved with model_args " + repr(identity.get("model_args"))) if identity else \
                "; is it a checkpoint of another model, or trained with other architecture options? pass them " \
                "(--model-arg KEY=VALUE / zoo.build(..., KEY=VALUE))"
            raise CheckpointMismatch(f"{name}: {e}{hint}") from None
        if model.load_report.reinitialised:
            warnings.warn(f"{name}: classifier re-initialised for {model.num_classes} classes (the weights have "
                          f"{found}): fine-tune it before use", stacklevel=3)
        elif identity is not None and len(identity.get("categories") or ()) == model.num_classes:
            model.categories = tuple(identity["categories"])
    if identity is not None and isinstance(identity.get("input"), dict):
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in identity["input"].items()
                  if k in PROTOCOL_FIELDS}
        info = info.replace(**fields)
    info = info.replace(num_classes=model.num_classes)
    frames = getattr(model, "num_frames", None)  # segment models are built for a number of frames
    centre = getattr(model, "centre_frame", info.centre_frame)
    if info.sampling == "segment" and isinstance(frames, int) and (frames, centre) != (info.num_frames,
                                                                                      info.centre_frame):
        seg = info.frames_per_segment + int(centre)
        info = info.replace(num_frames=frames, num_segments=frames // seg, centre_frame=centre)
    model.info = info
    return model


def _weights_record(name: str, pretrained: Union[bool, str], weights: Any) -> Optional[Weights]:
    """The `Weights` record that ``pretrained`` / ``weights`` name, or None for a path / URL / none."""
    entry = get_entry(name)
    if pretrained:
        if weights is not None:
            raise UsageError("pass pretrained=True (or a tag) or weights=..., not both")
        tag = pretrained if isinstance(pretrained, str) else None
        if not entry.weights:
            raise UnknownName(f"{name} has no released weights (see zoo.list_weights())")
        return weights_info(f"{entry.info.name}.{tag}" if tag else entry.info.name)
    if isinstance(weights, str) and "/" not in weights and os.sep not in weights and "://" not in weights:
        model, dot, tag = weights.rpartition(".")
        tags = {w.tag for w in entry.weights}
        if weights in tags:
            return weights_info(f"{entry.info.name}.{weights}")
        if dot and tag in tags and get_entry(model).info.name == entry.info.name:
            return weights_info(f"{entry.info.name}.{tag}")
        if not os.path.exists(weights) and "." not in weights and entry.weights:
            raise UnknownName(f"{weights!r} is neither a file nor a weights tag of {name}; tags: "
                           f"{', '.join(sorted(tags))}")
    return None


def build_pretrained(record: Weights, *, num_classes: Optional[int] = None, progress: bool = True,
                     **overrides) -> nn.Module:
    """Build ``record``'s model with its released weights (downloaded, checked and cached by
    `zoo.models._hub`). The state dict mapped to zoo's layout is cached too, so later builds skip
    reading the official file and the conversion (cached for the release's own architecture:
    without ``overrides``)."""
    from ._hub import fetch_files, load_mapped, save_mapped

    files = fetch_files(record, progress=progress)
    digests = [digest for _, digest in files]
    checkpoint = load_mapped(record, digests)
    fresh = checkpoint is None
    if fresh:
        paths = [p for p, _ in files]
        checkpoint = read_weights(paths if len(paths) > 1 else paths[0])
    model = build_with_checkpoint(record.model, checkpoint, num_classes=num_classes,
                                  **{**record.model_args, **overrides})
    if fresh and not overrides and not model.load_report.reinitialised:  # the release's own network only
        try:
            save_mapped(record, digests, model.state_dict())
        except WriteError as e:  # only a cache: the model is built all the same
            warnings.warn(f"the mapped weights were not cached: {e}")
    if record.input_args:
        model.info = model.info.replace(**record.input_args)
    if model.num_classes == record.num_classes:
        model.categories = record.categories
    model.pretrained_weights = record
    return model


def build(name: str, *, pretrained: Union[bool, str] = False, num_classes: Optional[int] = None,
          weights: Union[None, PathLike, Sequence[PathLike]] = None, progress: bool = True,
          **overrides) -> nn.Module:
    """Build a registered model; optionally with released weights or a checkpoint file.

    Args:
        name: a registered name (see `zoo.list_models`).
        pretrained: True for the model's default released weights, or a tag (``"kinetics400"``;
            see `zoo.list_weights`): downloaded into ``$ZOO_CACHE_DIR/weights`` (or taken from
            ``ZOO_WEIGHTS_MIRROR``), hash-checked, mapped and cached.
        num_classes: output classes; default: the weights' / checkpoint's, else the model
            info's. With weights, a different value re-initialises the classifier (for
            fine-tuning; a warning says so) and loads everything else.
        weights: a tag (as ``pretrained``), or a path or URL (downloaded with timeouts into the
            weights cache), or a sequence of
            them for ensembles released as several files (e.g. PAN Full: RGB then PA). Official
            layouts are mapped by the family's ``checkpoint_filter_fn``; a zoo checkpoint
            rebuilds the architecture it was saved with. Read once (`build_with_checkpoint`).
        progress: show a progress bar while downloading.
        overrides: architecture options of the family (unknown ones raise `TypeError`).

    ``model.categories`` holds the class names when the weights carry them; ``model.info``
    the input protocol (the release's, where it differs from the model's defaults).
    """
    check_counts({**overrides, "num_classes": num_classes})  # before any download
    record = _weights_record(name, pretrained, weights)
    if record is not None:
        return build_pretrained(record, num_classes=num_classes, progress=progress, **overrides)
    checkpoint = None if weights is None else read_weights(weights, progress=progress)
    return build_with_checkpoint(name, checkpoint, num_classes=num_classes, **overrides)


def check_input(x: torch.Tensor, *, num_frames: Optional[int] = None, model: str = "model",
                frames_multiple: int = 1) -> None:
    """Raise `ValueError` naming the expected shape unless ``x`` is ``[B, 3, T, H, W]``."""
    t = "T" if num_frames is None else str(num_frames)
    expected = f"[B, 3, {t}, H, W] (normalised float frames)"
    ok = isinstance(x, torch.Tensor) and x.dim() == 5 and x.shape[1] == 3 and x.is_floating_point()
    if ok and num_frames is not None:
        ok = x.shape[2] == num_frames
    if ok and frames_multiple > 1:
        ok = x.shape[2] % frames_multiple == 0
        if not ok:
            expected += f" with T a multiple of {frames_multiple}"
    if not ok:
        got = f"{[int(d) for d in x.shape]} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise UsageError(f"{model} expects input {expected}, got {got}")
