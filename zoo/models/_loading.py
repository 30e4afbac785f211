"""From a checkpoint's tensors to a model: official key layouts renamed, containers unwrapped, and
the strict load that allows only a classifier of another size (a new ``num_classes``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .._errors import BadCheckpoint
from ._contract import VideoModel

__all__ = ["rename_keys", "unwrap_state_dict", "CONTAINER_KEYS", "CheckpointMismatch", "LoadReport",
           "load_state_dict_checked", "compare_state_dict", "classifier_size", "classifier_keys"]


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


def classifier_keys(model: nn.Module) -> List[str]:
    heads = model.get_classifier() if isinstance(model, VideoModel) else []
    heads = heads if isinstance(heads, (list, tuple)) else [heads]
    ids = {id(h) for h in heads}
    keys = []
    for name, module in model.named_modules():
        if id(module) in ids:
            keys += [f"{name}.{k}" for k in module.state_dict()]
    return keys


def compare_state_dict(model: nn.Module, state_dict: Dict[str, torch.Tensor]) -> Tuple[LoadReport, List[str]]:
    """How ``state_dict`` fits ``model`` without loading it: the `LoadReport` a load would give
    (``loaded``: the keys that fit) and the problems (missing, unexpected, mis-shaped keys; a
    classifier of another size is not one)."""
    own = model.state_dict()
    head = set(classifier_keys(model))
    report = LoadReport()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    report.filled = [k for k in missing if k.endswith("num_batches_tracked")]
    missing = [k for k in missing if k not in report.filled]
    mismatched = []
    for k, v in state_dict.items():
        if k not in own:
            continue
        if tuple(v.shape) != tuple(own[k].shape):
            if k in head:
                report.reinitialised.append(k)
                continue
            mismatched.append(f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}")
            continue
        report.loaded.append(k)

    def first(items, sep=", ", n=4):
        return sep.join(items[:n]) + (f"{sep}... ({len(items) - n} more)" if len(items) > n else "")

    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {first(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {first(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches ({len(mismatched)}): {first(mismatched, '; ')}")
    return report, problems


def load_state_dict_checked(model: nn.Module, state_dict: Dict[str, torch.Tensor]) -> LoadReport:
    """Load a filtered state dict strictly, except for a classifier whose size differs.

    A classifier whose shape differs from the model's (a new ``num_classes``) keeps its fresh
    initialisation; every other missing, unexpected or mis-shaped key raises `CheckpointMismatch`
    (a `BadCheckpoint` and a ``RuntimeError``) with the counts and the first keys of each kind.
    """
    report, problems = compare_state_dict(model, state_dict)
    if problems:
        raise CheckpointMismatch("checkpoint does not match the model: " + " | ".join(problems))
    own = model.state_dict()
    to_load = {k: state_dict[k] for k in report.loaded}
    for k in report.reinitialised + report.filled:
        to_load[k] = own[k]
    model.load_state_dict(to_load, strict=True)
    report.loaded = sorted(report.loaded)
    return report


def classifier_size(model: nn.Module, state_dict: Dict[str, Any]) -> Optional[int]:
    """Outputs of the classifier that ``state_dict`` (in ``model``'s keys) holds, or None."""
    for key in classifier_keys(model):
        if key.endswith("weight") and isinstance(state_dict.get(key), torch.Tensor):
            return int(state_dict[key].shape[0])
    return None
