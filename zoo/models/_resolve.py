"""`resolve`: from what a user names (a model, weights, a clip length, a crop, views, options) to
one `Spec`: the registered model, its constructor options, its input protocol, the released
weights and class names, and the files to read. Every command, the engine and the benchmarks get
their model and input protocol from a `Spec`; nothing else derives them again. `zoo.build` takes a
name (resolved here) or a `Spec`.

Precedence, lowest first: the model's defaults; the released weights' record (its options and its
input protocol), or a zoo checkpoint's identity; then what the caller passes. The clip length and
the constructor argument it fixes (``ModelInfo.frames_arg``: the segments of TSN/TSM/PAN, the head
pooling window of SlowFast and I3D-R50) are kept in step here and only here: ``frames`` sets both;
an option ``num_segments=16`` (a ``*_16f`` release's) sets the clip length; a release whose
protocol names a clip length sets the option.

Weights are a tag (``"kinetics400"``, ``"tsm_r50.kinetics400"``; or ``pretrained``), a local file
or a URL (downloaded into the cache first), or a list of them (PAN Full's two files). A local file
is looked at before anything is built: a zoo checkpoint supplies its model, options, protocol and
class names; a file whose name is a release file's name, or whose sha256 is a release's published
one, is read as that release (its options, protocol and class names apply; ``Spec.notes`` says
which matched).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .._errors import BadCheckpoint, InputNotFound, UnknownName, UsageError
from ._checks import check_counts
from ._identity import PROTOCOL_FIELDS, peek_identity
from ._info import ModelInfo, Weights
from ._registry import get_entry, is_model, list_models, model_weights, weights_info

__all__ = ["Spec", "resolve", "release_of_files"]


@dataclass(frozen=True)
class Spec:
    """A model to build, resolved (see the module docstring). ``info`` is the input protocol the
    data pipeline reads; ``model_args`` the constructor's options; ``num_classes`` the classifier
    asked for (None: the weights', else the model's default); ``record`` the released weights (to
    fetch when ``files`` is empty); ``files`` the checkpoint files to read (local paths or URLs);
    ``categories`` the class names of the weights; ``notes`` what was recognised, a line each."""

    name: str
    info: ModelInfo
    model_args: Mapping[str, Any] = field(default_factory=dict)
    num_classes: Optional[int] = None
    record: Optional[Weights] = None
    files: Tuple[str, ...] = ()
    categories: Tuple[str, ...] = ()
    notes: Tuple[str, ...] = ()

    @property
    def weights_tag(self) -> Optional[str]:
        return self.record.name if self.record is not None else None

    @property
    def has_weights(self) -> bool:
        return bool(self.record is not None or self.files)

    def weights_label(self) -> str:
        """What the model runs with, for printouts and result files: ``model.tag``, the file(s), or
        that its weights are random."""
        if self.record is not None and not self.files:
            return self.record.name
        if self.files:
            return ",".join(self.files) + (f" ({self.record.name})" if self.record is not None else "")
        return f"{self.name} (random weights)"

    def protocol(self) -> Dict[str, Any]:
        """The input protocol's fields a checkpoint records (``PROTOCOL_FIELDS``): what decides how a
        video becomes the model's clips."""
        return {f: getattr(self.info, f) for f in PROTOCOL_FIELDS}

    def replace(self, **changes) -> "Spec":
        return replace(self, **changes)

    def with_classes(self, num_classes: int) -> "Spec":
        """This spec with a classifier of ``num_classes`` (e.g. the data's): the weights' class
        names stay only if they are as many."""
        check_counts({"num_classes": num_classes})
        keep = self.categories if len(self.categories) == num_classes else ()
        return replace(self, num_classes=int(num_classes), info=self.info.replace(num_classes=int(num_classes)),
                       categories=keep)


WeightsArg = Union[None, str, os.PathLike, Sequence[Union[str, os.PathLike]]]


def resolve(name: Optional[str] = None, *, weights: WeightsArg = None,
            pretrained: Union[None, bool, str, Weights] = None,
            frames: Optional[int] = None, size: Optional[int] = None, views: Optional[Tuple[int, int]] = None,
            num_classes: Optional[int] = None, identity: Optional[Dict[str, Any]] = None, progress: bool = True,
            **model_args) -> Spec:
    """The `Spec` of ``name`` with ``weights`` (or ``pretrained``: True for the default release, or
    a tag, or a `Weights` record), clip length ``frames``, crop ``size``, test ``views`` (clips, crops), ``num_classes``
    and architecture options ``model_args``. ``name`` may be omitted when the weights are a zoo
    checkpoint (it names its model). ``identity``: a zoo checkpoint's identity already read (for a
    checkpoint object rather than a file). URLs are downloaded into the weights cache here."""
    check_counts({**model_args, "num_classes": num_classes})
    for flag, value in (("frames", frames), ("size", size)):
        if value is not None and int(value) < 1:
            raise UsageError(f"{flag} must be >= 1, got {value}")
    if pretrained and weights is not None:
        raise UsageError("pass pretrained=True (or a tag) or weights=..., not both")
    given = {k: v for k, v in model_args.items() if v is not None}
    record, files, notes = None, (), []
    if isinstance(pretrained, Weights):  # a record itself (e.g. one whose files were moved)
        record, name = pretrained, name or pretrained.model
    elif pretrained:
        if name is None:
            raise UsageError("pretrained= needs a model name")
        record = _record_by_tag(name, pretrained if isinstance(pretrained, str) else None)
    elif weights is not None:
        record, files = _weights(name, weights, progress)
        if files:
            if identity is None and len(files) == 1:
                identity = peek_identity(files[0])
            if identity is None:
                record, note = release_of_files(files, name) if record is None else (record, None)
                notes += [note] if note else []
    if identity is not None:
        saved = identity.get("model")
        if name is None:
            name = saved
        elif saved and get_entry(name).info.name != saved:
            raise BadCheckpoint(f"the checkpoint is a {saved} checkpoint, not {get_entry(name).info.name}: build "
                                f"{saved} (zoo: name it, or drop the model name with --weights)")
    if name is None:
        raise UsageError("name a model (e.g. tsm_r50), or pass the weights of a zoo checkpoint (it names its model)")
    entry = get_entry(name)
    if record is not None and record.model != entry.info.name:
        raise UsageError(f"{record.name} are weights of {record.model}, not of {entry.info.name}")
    # options and protocol: defaults < release / checkpoint < caller
    args: Dict[str, Any] = {}
    protocol: Dict[str, Any] = {}
    categories: Tuple[str, ...] = ()
    classes = num_classes
    if record is not None:
        args.update(record.model_args)
        protocol.update(record.input_args)
        categories = record.categories
        classes = record.num_classes if classes is None else classes
    if identity is not None:
        args.update(identity.get("model_args") or {})
        protocol.update({k: tuple(v) if isinstance(v, list) else v for k, v in (identity.get("input") or {}).items()
                         if k in PROTOCOL_FIELDS})
        categories = tuple(identity.get("categories") or ()) or categories
        if classes is None and identity.get("num_classes"):
            classes = int(identity["num_classes"])
    args.update(given)
    info = _protocol(entry.info, protocol, args, frames=frames, explicit=given, name=entry.info.name)
    info = _sized(info, size, entry.info.name)
    if views is not None:
        if len(views) != 2 or int(views[0]) < 1 or int(views[1]) < 1:
            raise UsageError(f"views must be (clips, crops), each >= 1, got {views}")
        info = info.replace(test_views=(int(views[0]), int(views[1])))
    check_counts(args)
    if classes is not None:
        info = info.replace(num_classes=int(classes))
    if categories and len(categories) != info.num_classes:
        categories = ()  # another classifier (a new num_classes): the names do not apply
    return Spec(name=entry.info.name, info=info, model_args=args, num_classes=num_classes, record=record,
                files=tuple(files), categories=tuple(categories), notes=tuple(notes))


# -- weights -------------------------------------------------------------------------------------
def _record_by_tag(name: str, tag: Optional[str]) -> Weights:
    entry = get_entry(name)
    if not entry.weights:
        raise UnknownName(f"{name} has no released weights (see zoo.list_weights())")
    return weights_info(f"{entry.info.name}.{tag}" if tag else entry.info.name)


def _is_tag(weights: str) -> bool:
    return "/" not in weights and os.sep not in weights and "://" not in weights and not os.path.exists(weights)


def _weights(name: Optional[str], weights: WeightsArg, progress: bool) -> Tuple[Optional[Weights], Tuple[str, ...]]:
    """(the record a tag names, or None; the files to read)."""
    items = [os.fspath(w) for w in weights] if isinstance(weights, (list, tuple)) else [os.fspath(weights)]
    if not items:
        raise UsageError("weights= is an empty list")
    if len(items) == 1 and _is_tag(items[0]):
        tag = items[0]
        if name is None:
            raise UsageError(f"weights={tag!r} is not a file: a weights tag needs a model name")
        entry = get_entry(name)
        tags = {w.tag for w in entry.weights}
        model, dot, short = tag.rpartition(".")
        if tag in tags:
            return _record_by_tag(name, tag), ()
        if dot and short in tags and is_model(model) and get_entry(model).info.name == entry.info.name:
            return _record_by_tag(name, short), ()
        if not dot:  # a word that is no tag (with a dot, it is taken for a file name below)
            raise UnknownName(f"{tag!r} is neither a file nor a weights tag of {name}; tags: "
                              f"{', '.join(sorted(tags)) or 'none'}")
    files = []
    for item in items:
        if "://" in item:
            from ._hub import fetch_url
            files.append(str(fetch_url(item, progress=progress)))
        elif not os.path.exists(item):
            raise InputNotFound(f"weights file {item!r} does not exist")
        else:
            files.append(item)
    return None, tuple(files)


def release_of_files(files: Sequence[str], name: Optional[str] = None) -> Tuple[Optional[Weights], Optional[str]]:
    """The release whose files these are (of ``name``, or of any model): every file's name is one
    of the record's file names, or every file's sha256 is the record's published digest. Returns
    the record and a line saying how it matched, or (None, None)."""
    records = _records(name)
    names = [os.path.basename(f) for f in files]
    for w in records:
        if len(w.files) == len(files) and set(names) == set(w.file_names):
            return w, f"{', '.join(files)}: release {w.name} (by its file name): its options, input protocol and " \
                      f"class names apply"
    published = [w for w in records if len(w.files) == len(files) and all(w.hashes)]
    if not published:
        return None, None
    from .._files import sha256_file

    digests = [sha256_file(f) for f in files]
    for w in published:
        if all(any(d.startswith(h.lower()) for d in digests) for h in w.hashes):
            return w, f"{', '.join(files)}: release {w.name} (by its sha256): its options, input protocol and " \
                      f"class names apply"
    return None, None


def _records(name: Optional[str]) -> List[Weights]:
    if name is not None:
        return list(model_weights(name))
    return [w for m in list_models() for w in model_weights(m)]


# -- the protocol ----------------------------------------------------------------------------------
def _frames_of(info: ModelInfo, value: int) -> Dict[str, Any]:
    """The `ModelInfo` fields of a clip length fixed by ``info.frames_arg = value``."""
    if info.frames_arg == "num_segments":
        return {"num_segments": int(value), "num_frames": int(value) * info.segment_length}
    if info.sampling == "segment":  # a clip length under segment sampling: its segments follow
        return {"num_frames": int(value), "num_segments": int(value) // info.segment_length}
    return {"num_frames": int(value)}


def _protocol(base: ModelInfo, protocol: Dict[str, Any], args: Dict[str, Any], *, frames: Optional[int],
              explicit: Dict[str, Any], name: str) -> ModelInfo:
    """``base`` with the weights' ``protocol`` applied, and the clip length and its constructor
    argument (in ``args``, updated) kept in step (see the module docstring)."""
    info = base.replace(**protocol) if protocol else base
    if "centre_frame" in args and info.sampling == "segment":  # a constructor option that is also protocol
        centre = bool(args["centre_frame"])
        info = info.replace(centre_frame=centre, num_frames=info.num_segments * (info.frames_per_segment + centre))
    arg = info.frames_arg
    if frames is not None:
        frames = int(frames)
        if info.sampling == "segment":
            if frames % info.segment_length:
                raise UsageError(f"{name} samples {info.segment_length} frames per segment: frames must be a multiple "
                                 f"of it, got {frames}")
            info = info.replace(num_frames=frames, num_segments=frames // info.segment_length)
        else:
            info = info.replace(num_frames=frames)
        if arg:
            value = frames // info.segment_length if arg == "num_segments" else frames
            if arg in explicit and explicit[arg] != value:
                raise UsageError(f"{name}: model argument {arg}={explicit[arg]} disagrees with {frames} frames "
                                 f"({arg}={value}); drop one of them")
            args[arg] = value
    elif arg and arg in args:  # a release's (or the caller's) option fixes the clip length
        info = info.replace(**_frames_of(info, args[arg]))
    elif arg and info.num_frames != base.num_frames or arg and info.num_segments != base.num_segments:
        args[arg] = info.num_segments if arg == "num_segments" else info.num_frames  # the protocol's clip length
    return info


def _sized(info: ModelInfo, size: Optional[int], name: str) -> ModelInfo:
    if size is None:
        return info
    size = int(size)
    if size < info.min_size:
        raise UsageError(f"{name} needs a crop of at least {info.min_size} px, got {size}")
    scale = size / info.crop_size
    return info.replace(crop_size=size, resize_size=max(size, round(info.resize_size * scale)),
                        train_jitter=tuple(max(size, round(j * scale)) for j in info.train_jitter))
