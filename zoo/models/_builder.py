"""`build`: a `Spec` (`zoo.models._resolve`) made into a model: constructed, its checkpoint read
(released files fetched and checked, the mapped state dict cached) and loaded through its family's
filter, and its attributes (`zoo.models._contract.VideoModel`) set, here and only here."""
from __future__ import annotations

import warnings
from typing import Any, Optional, Sequence, Union

import torch
import torch.nn as nn

from .._errors import BadCheckpoint, UsageError
from .._files import WriteError
from ._checkpoint_io import PathLike, read_weights
from ._identity import checkpoint_identity
from ._info import Weights
from ._loading import CheckpointMismatch, classifier_size, compare_state_dict, load_state_dict_checked, unwrap_state_dict
from ._registry import get_entry
from ._resolve import Spec, resolve

__all__ = ["build", "build_with_checkpoint", "build_pretrained"]


def build(name: Union[str, Spec, None] = None, *, pretrained: Union[bool, str, Weights] = False,
          num_classes: Optional[int] = None, weights: Union[None, PathLike, Sequence[PathLike]] = None,
          progress: bool = True, **overrides) -> nn.Module:
    """Build a registered model; optionally with released weights or a checkpoint file.

    Args:
        name: a registered name (see `zoo.list_models`), or a `Spec` from `zoo.resolve` (then no
            other argument); may be omitted with the weights of a zoo checkpoint (they name it).
        pretrained: True for the model's default released weights, or a tag (``"kinetics400"``;
            see `zoo.list_weights`): downloaded into ``$ZOO_CACHE_DIR/weights`` (or taken from
            ``ZOO_WEIGHTS_MIRROR``), hash-checked, mapped and cached.
        num_classes: output classes; default: the weights' / checkpoint's, else the model
            info's. With weights, a different value re-initialises the classifier (for
            fine-tuning; a warning says so) and loads everything else.
        weights: a tag (as ``pretrained``), or a path or URL (downloaded with timeouts into the
            weights cache), or a sequence of them for ensembles released as several files (e.g.
            PAN Full: RGB then PA). Official layouts are mapped by the family's
            ``checkpoint_filter_fn``; a zoo checkpoint rebuilds the architecture it was saved with;
            a release file given by path is recognised by its name or sha256 and read as that
            release.
        progress: show a progress bar while downloading.
        overrides: architecture options of the family (unknown ones raise `zoo.UnknownOption`).

    ``model.info`` holds the input protocol (the release's, where it differs from the model's
    defaults), ``model.categories`` the class names when the weights carry them (see
    `zoo.models.VideoModel` for every attribute).
    """
    if isinstance(name, Spec):
        if pretrained or num_classes is not None or weights is not None or overrides:
            raise UsageError("build(spec) takes the spec alone: resolve the options into it (zoo.resolve)")
        return instantiate(name, progress=progress)
    return instantiate(resolve(name, pretrained=pretrained or None, weights=weights, num_classes=num_classes,
                               progress=progress, **overrides), progress=progress)


def build_with_checkpoint(name: str, checkpoint: Any = None, *, num_classes: Optional[int] = None,
                          **overrides) -> nn.Module:
    """Build ``name`` and load ``checkpoint``, an object `read_checkpoint` returned (or a list of
    them), through the family's filter. A zoo checkpoint's identity supplies its options, protocol
    and class names (explicit ``overrides`` win)."""
    spec = resolve(name, num_classes=num_classes, identity=checkpoint_identity(checkpoint), **overrides)
    return instantiate(spec, checkpoint=checkpoint)


def build_pretrained(record: Weights, *, num_classes: Optional[int] = None, progress: bool = True,
                     **overrides) -> nn.Module:
    """Build ``record``'s model with its released weights (`build` with ``pretrained=record``)."""
    return build(record.model, pretrained=record, num_classes=num_classes, progress=progress, **overrides)


def instantiate(spec: Spec, *, checkpoint: Any = None, progress: bool = True) -> nn.Module:
    """Construct ``spec``'s model, load its weights (``checkpoint``, an object already read, or the
    spec's files / release) and set its attributes. The state dict mapped from a release is cached,
    with a record of the files it came from, whenever the release's own architecture is built."""
    from ._hub import fetch_files, load_mapped, save_mapped

    entry = get_entry(spec.name)
    digests, fresh = None, False
    own_architecture = spec.record is not None and dict(spec.model_args) == dict(spec.record.model_args)
    if checkpoint is None and spec.has_weights:
        if spec.record is not None and not spec.files:
            fetched = fetch_files(spec.record, progress=progress)
            paths, digests = [str(p) for p, _ in fetched], [d for _, d in fetched]
        else:
            paths = list(spec.files)
            if spec.record is not None:
                from .._files import sha256_file
                digests = [sha256_file(p) for p in paths]
        checkpoint = load_mapped(spec.record, digests) if own_architecture else None
        fresh = checkpoint is None
        if fresh:
            checkpoint = read_weights(paths if len(paths) > 1 else paths[0], progress=progress)
    model = entry.builder(num_classes=spec.info.num_classes if spec.num_classes is None else spec.num_classes,
                          **spec.model_args)
    report = None
    if checkpoint is not None:
        state_dict = entry.filter_fn(checkpoint, model) if entry.filter_fn else unwrap_state_dict(checkpoint)
        if not isinstance(state_dict, dict):
            raise TypeError(f"the {entry.info.family} checkpoint filter did not return a state dict")
        found = classifier_size(model, state_dict)
        if spec.num_classes is None and found is not None and found != model.num_classes:
            model.reset_classifier(found)
        try:
            report = load_state_dict_checked(model, state_dict)
        except CheckpointMismatch as e:
            raise CheckpointMismatch(f"{spec.name}: {e}{_mismatch_hint(spec, checkpoint)}") from None
        if report.reinitialised:
            warnings.warn(f"{spec.name}: classifier re-initialised for {model.num_classes} classes (the weights have "
                          f"{found}): fine-tune it before use", stacklevel=3)
        elif fresh and own_architecture and digests:
            try:
                save_mapped(spec.record, digests, model.state_dict())
            except WriteError as e:  # only a cache: the model is built all the same
                warnings.warn(f"the mapped weights were not cached: {e}")
    # the contract's attributes, set once, here
    model.info = spec.info.replace(num_classes=model.num_classes)
    reinitialised = report is not None and report.reinitialised
    model.categories = spec.categories if len(spec.categories) == model.num_classes and not reinitialised else ()
    model.weights_record = spec.record
    model.build_args = {k: v for k, v in spec.model_args.items() if v is not None}
    model.load_report = report
    return model


def _mismatch_hint(spec: Spec, checkpoint: Any) -> str:
    """Why a checkpoint may not fit: the options it was saved with, or a release of this model whose
    options it fits (found by building each release's architecture on the meta device)."""
    identity = checkpoint_identity(checkpoint)
    if identity is not None:
        return f"; it was saved with model_args {identity.get('model_args')!r}"
    entry = get_entry(spec.name)
    for w in entry.weights:
        if dict(w.model_args) == dict(spec.model_args):
            continue
        with torch.device("meta"):
            candidate = entry.builder(num_classes=w.num_classes, **w.model_args)
        try:
            state_dict = entry.filter_fn(checkpoint, candidate) if entry.filter_fn else unwrap_state_dict(checkpoint)
        except BadCheckpoint:
            continue
        if not compare_state_dict(candidate, state_dict)[1]:
            args = ", ".join(f"{k}={v!r}" for k, v in w.model_args.items())
            return (f"; it fits the options of the release {w.name} ({args}): pass them (--model-arg KEY=VALUE / "
                    f"zoo.build(..., {args})), or use weights={w.tag!r}")
    return ("; is it a checkpoint of another model, or trained with other architecture options? pass them "
            "(--model-arg KEY=VALUE / zoo.build(..., KEY=VALUE))")
