"""The model registry: names -> builders, `ModelInfo` records and checkpoint filters."""
from __future__ import annotations

import difflib
import fnmatch
import inspect
import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch.nn as nn

from .._errors import UnknownName, UnknownOption
from ._info import BenchPreset, ModelInfo, Weights

__all__ = ["register_model", "list_models", "model_info", "model_weights", "bench_preset", "model_aliases",
           "get_entry", "is_model", "create_model", "list_weights", "weights_info"]


@dataclass(frozen=True)
class Entry:
    name: str
    builder: Callable[..., nn.Module]
    info: ModelInfo
    filter_fn: Optional[Callable[..., Dict[str, Any]]]
    alias_of: Optional[str] = None
    weights: Tuple[Weights, ...] = ()
    bench: Optional[BenchPreset] = None


_REGISTRY: Dict[str, Entry] = {}


def register_model(info: ModelInfo, *, filter_fn=None, weights: Sequence[Weights] = (),
                   bench: Optional[BenchPreset] = None, aliases=()):
    """Register a builder under ``info.name`` (and any ``aliases``) with its checkpoint filter,
    its released ``weights`` records and its ``bench`` preset. A duplicate name or tag raises."""
    tags = [w.tag for w in weights]
    if len(set(tags)) != len(tags):
        raise ValueError(f"{info.name}: duplicate weights tags in {tags}")
    weights = tuple(replace(w, model=info.name) for w in weights)

    def decorator(fn):
        if fn.__name__ != info.name:
            raise ValueError(f"builder {fn.__name__!r} registered with info for {info.name!r}")
        for name in (info.name, *aliases):
            if name in _REGISTRY:
                raise ValueError(f"model {name!r} is already registered "
                                 f"(by {_REGISTRY[name].builder.__module__})")
            _REGISTRY[name] = Entry(name, fn, info, filter_fn, alias_of=None if name == info.name else info.name,
                                    weights=tuple(weights), bench=bench)
        return fn

    return decorator


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def list_models(pattern: str = "*", *, include_aliases: bool = False) -> List[str]:
    """Registered model names matching an fnmatch ``pattern``, naturally sorted."""
    names = [n for n, e in _REGISTRY.items() if include_aliases or e.alias_of is None]
    return sorted(fnmatch.filter(names, pattern), key=_natural_key)


def is_model(name: str) -> bool:
    return name in _REGISTRY


def get_entry(name: str) -> Entry:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see zoo.list_models()"
        raise UnknownName(f"unknown model {name!r}{hint}") from None


def model_info(name: str) -> ModelInfo:
    """The `ModelInfo` record of a registered model (raises `KeyError` with close matches)."""
    return get_entry(name).info


def model_weights(name: str) -> Tuple[Weights, ...]:
    """The released checkpoints of a registered model, one `Weights` record each (may be empty)."""
    return get_entry(name).weights


def list_weights(pattern: str = "*") -> List[str]:
    """Released weights as ``model.tag`` names matching an fnmatch ``pattern`` (e.g. ``"slowfast*"``,
    ``"*.kinetics400"``), in model order; each model's default tag first."""
    names = [w.name for m in list_models() for w in _REGISTRY[m].weights]
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def weights_info(name: str) -> Weights:
    """The `Weights` record of ``"model.tag"`` (or of a model's default tag, given ``"model"``):
    ``urls``, ``sha256``, ``num_classes``, ``categories``, ``results``, ... Unknown names raise
    `KeyError` with close matches."""
    model, _, tag = name.partition(".")
    entry = get_entry(model)
    if not entry.weights:
        raise UnknownName(f"{model} has no released weights")
    if not tag:  # the default: the first release that classifies videos (an ImageNet record only initialises)
        releases = [w for w in entry.weights if w.dataset != "imagenet"]
        if not releases:
            raise UnknownName(f"{model} has no released video weights; its "
                              f"{', '.join(w.tag for w in entry.weights)} weights are an initialisation: name the tag "
                              f"(e.g. {model}.{entry.weights[0].tag})")
        return releases[0]
    for w in entry.weights:
        if w.tag == tag:
            return w
    tags = [w.tag for w in entry.weights]
    close = difflib.get_close_matches(tag, tags, n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(f'{model}.{t}' for t in close)}?" if close else f"tags: {', '.join(tags)}"
    raise UnknownName(f"unknown weights {name!r}; {hint}")


def bench_preset(name: str) -> BenchPreset:
    """The small `BenchPreset` network ``zoo compare`` trains on SynthMotion for ``name``."""
    entry = get_entry(name)
    if entry.bench is None:
        raise UnknownName(f"{name} has no bench preset (register it with bench=BenchPreset(...))")
    return entry.bench


def model_aliases() -> Dict[str, str]:
    """``{alias: registered name}`` of every alias (e.g. ``slowfast_r50 -> slowfast_8x8_r50``)."""
    return {n: e.alias_of for n, e in _REGISTRY.items() if e.alias_of is not None}


def accepted_arguments(cls) -> List[str]:
    params = inspect.signature(cls).parameters.values()
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def create_model(cls, variant_args: Dict[str, Any], overrides: Dict[str, Any]) -> nn.Module:
    """Instantiate ``cls(**variant_args, **overrides)``; an unknown override raises `UnknownOption`
    (a `TypeError`).

    Overrides whose value is ``None`` are dropped, so unset command-line flags never clobber
    a variant's defaults.
    """
    accepted = accepted_arguments(cls)
    unknown = [k for k in overrides if k not in accepted]
    if unknown:
        raise UnknownOption(f"{cls.__name__} got unknown override(s) {', '.join(map(repr, unknown))}; "
                        f"accepted: {', '.join(accepted)}")
    args = dict(variant_args)
    args.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**args)
