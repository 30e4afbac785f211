"""Run configuration: dataclass defaults < YAML file (``safe_load``) < command-line overrides.

Overrides are ``key=value`` strings whose value is parsed as YAML (``lr=0.1``,
``lr_steps=[20,40]``, ``model_args.backbone=resnet18``). Unknown keys are errors that list the
accepted ones; the resolved config is saved with every run.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional

import yaml

from .._errors import InputNotFound, UsageError

__all__ = ["TrainConfig", "load_config", "apply_overrides", "parse_views", "dump_config", "AGGREGATIONS",
           "TEMPORAL_ORDERS"]

# how a video's view scores combine (see metrics.aggregate_views); the same as zoo.models.ModelInfo's
# VIEW_AGGREGATIONS (a test checks), written here so that `zoo --help` imports no torch
AGGREGATIONS = ("prob-mean", "logit-mean", "max")
SCORE_TASKS = ("predict", "features", "timeline")  # zoo score --task (zoo.engine.score)
TEMPORAL_ORDERS = ("normal", "reversed", "shuffled", "single")  # frame orders the harness can feed (diagnostics)
OPTIMIZERS = ("sgd", "adamw", "rmsprop")
SCHEDULES = ("cosine", "step", "constant")
AMP_MODES = ("none", "bf16", "fp16")
FREEZE_MODES = ("none", "backbone", "bn")  # zoo.engine.finetune


@dataclass
class TrainConfig:
    """Everything a training run depends on (TSM recipe defaults: SGD 0.9, wd 5e-4, clip 20)."""

    model: Optional[str] = None
    data: Optional[str] = None  # dataset spec (see zoo.data.build_dataset)
    val_data: Optional[str] = None  # default: `data` with split "val"
    data_root: Optional[str] = None
    out: Optional[str] = None  # default: runs/<model>
    weights: Optional[str] = None  # fine-tune from this checkpoint (classifier re-initialised)
    pretrained: Any = None  # fine-tune from released weights: a tag (e.g. imagenet, kinetics400) or true (default)
    recipe: Optional[str] = None  # the named recipe applied before the config file and flags (zoo.engine.recipes)
    split: Optional[int] = None  # UCF101 / HMDB51: which official split (1-3)
    model_args: Dict[str, Any] = field(default_factory=dict)  # architecture overrides for zoo.build
    frames: Optional[int] = None  # frames per clip (segments for segment-sampling models)
    size: Optional[int] = None  # crop size; the resize size scales with it
    epochs: int = 10
    batch_size: int = 8  # per process
    workers: int = 0
    optimizer: str = "sgd"
    lr: float = 0.01  # per batch of `batch_size` x processes
    momentum: float = 0.9
    nesterov: bool = False  # SGD with Nesterov momentum (PySlowFast / TAda2D recipes)
    # RMSprop, TensorFlow's form (timm RMSpropTF: epsilon inside the square root): decay of the squared-gradient
    # average and epsilon (TensorFlow Model Garden's MoViNet recipe: 0.9 and 1.0)
    rmsprop_decay: float = 0.9
    rmsprop_eps: float = 1.0
    weight_decay: float = 5e-4
    no_decay_bias_norm: bool = True  # TSM recipe: no weight decay on biases and norm layers
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    lr_steps: List[float] = field(default_factory=list)  # epochs, for schedule=step
    lr_gamma: float = 0.1
    min_lr: float = 0.0
    clip_grad: Optional[float] = 20.0
    label_smoothing: float = 0.0
    dropout: Optional[float] = None  # dropout before the classifier (default: the model's)
    freeze: str = "none"  # none | backbone (linear probe) | bn (partial BN); see zoo.engine.finetune
    head_lr_mult: float = 1.0  # classifier learning-rate multiplier (TSM: 5)
    bias_lr_mult: float = 1.0  # bias learning-rate multiplier (TSN/TSM: 2)
    mixup: float = 0.0  # mixup alpha (timm Mixup; 0 = off)
    cutmix: float = 0.0  # cutmix alpha (timm Mixup; 0 = off)
    amp: str = "none"
    eval_every: int = 1  # epochs; 0 evaluates only at the end
    eval_views: Optional[str] = None  # CLIPSxCROPS, default the model's test views
    eval_batch_size: int = 4
    agg: str = "prob-mean"
    on_error: str = "error"  # what to do with unreadable videos: error | skip
    seed: int = 0
    deterministic: bool = True
    device: str = "auto"
    progress: bool = True
    log_every: int = 50  # steps between progress lines when there is no progress bar (0 = none)

    def validate(self) -> "TrainConfig":
        if not self.model:
            raise UsageError("no model: name one (zoo train MODEL) or set `model:` in the config")
        if not self.data:
            raise UsageError("no data: pass --data SPEC or set `data:` in the config")
        for name, value, choices in (("optimizer", self.optimizer, OPTIMIZERS), ("schedule", self.schedule, SCHEDULES),
                                     ("amp", self.amp, AMP_MODES), ("on_error", self.on_error, ("error", "skip"))):
            if value not in choices:
                raise UsageError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        if self.freeze not in FREEZE_MODES:
            raise UsageError(f"freeze must be one of {', '.join(FREEZE_MODES)}, got {self.freeze!r}")
        if self.pretrained is not None and self.pretrained is not False and self.weights:
            raise UsageError("pass --weights FILE or --pretrained [TAG], not both")
        for name in ("mixup", "cutmix", "label_smoothing", "head_lr_mult", "bias_lr_mult"):
            if float(getattr(self, name)) < 0:
                raise UsageError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise UsageError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.split is not None and self.split not in (1, 2, 3):
            raise UsageError(f"split must be 1, 2 or 3 (UCF101 / HMDB51), got {self.split}")
        if self.agg not in AGGREGATIONS:
            raise UsageError(f"agg must be one of {', '.join(AGGREGATIONS)}, got {self.agg!r}")
        for name in ("frames", "size"):
            if getattr(self, name) is not None and int(getattr(self, name)) < 1:
                raise UsageError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise UsageError(f"lr must be > 0, got {self.lr}")
        if not isinstance(self.model_args, dict):
            raise UsageError(f"model_args must be a mapping, got {self.model_args!r}")
        if self.eval_views is not None:
            parse_views(self.eval_views)
        if self.out is None:
            self.out = os.path.join("runs", self.model)
        return self

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def _fields() -> Dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def _set(cfg: TrainConfig, key: str, value: Any, source: str) -> None:
    fields = _fields()
    top, _, sub = key.partition(".")
    if top not in fields:
        raise UsageError(f"unknown config key {key!r} in {source}; accepted: {', '.join(fields)}")
    if sub:
        if top != "model_args":
            raise UsageError(f"{key!r} in {source}: only model_args takes sub-keys (model_args.NAME=VALUE)")
        cfg.model_args = {**cfg.model_args, sub: value}
        return
    setattr(cfg, top, _coerce(fields[top], value, key, source))


def _coerce(f: dataclasses.Field, value: Any, key: str, source: str) -> Any:
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    if value is None or default is None:
        return value
    kind = type(default)
    if kind is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{key} in {source} must be true or false, got {value!r}")
        return value
    if kind in (int, float):
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{key} in {source} must be a number, got {value!r}")
        if kind is int and float(value) != int(value):
            raise UsageError(f"{key} in {source} must be an integer, got {value!r}")
        return kind(value)
    if kind is list and not isinstance(value, list):
        return [value]
    if kind is dict and not isinstance(value, dict):
        raise UsageError(f"{key} in {source} must be a mapping, got {value!r}")
    if kind is str:
        return str(value)
    return value


def load_config(path: Optional[str] = None, cfg: Optional[TrainConfig] = None) -> TrainConfig:
    """Defaults updated from a YAML mapping (``yaml.safe_load``)."""
    cfg = cfg or TrainConfig()
    if path is None:
        return cfg
    if not os.path.isfile(path):
        raise InputNotFound(f"config file {path!r} does not exist")
    with open(path) as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise UsageError(f"config file {path!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path!r} must hold a mapping of key: value")
    for k, v in data.items():
        _set(cfg, str(k), v, path)
    return cfg


def apply_overrides(cfg: TrainConfig, overrides: Iterable[str]) -> TrainConfig:
    """Apply ``key=value`` strings (values parsed as YAML)."""
    for item in overrides:
        key, eq, raw = item.partition("=")
        if not eq or not key:
            raise UsageError(f"override {item!r} must look like key=value (e.g. lr=0.1)")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        _set(cfg, key.strip(), value, "--set")
    return cfg


def dump_config(cfg: TrainConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def parse_views(text) -> tuple:
    """``"10x3"`` -> ``(10, 3)`` (clips x crops)."""
    if isinstance(text, (tuple, list)) and len(text) == 2:
        clips, crops = text
    else:
        parts = str(text).lower().split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise UsageError(f"views must look like CLIPSxCROPS (e.g. 2x3), got {text!r}")
        clips, crops = (int(p) for p in parts)
    if int(clips) < 1 or int(crops) < 1:
        raise UsageError(f"views must be positive, got {text!r}")
    return int(clips), int(crops)
