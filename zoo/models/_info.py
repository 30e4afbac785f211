"""The typed record that describes a registered model.

`ModelInfo` is the single source of truth read by the samplers, the transforms, the
evaluation harness and the model cards. Nothing outside a model's own file branches on
its name: everything a consumer needs to know about the input protocol is here.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Optional, Tuple

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINETICS_MEAN = (0.45, 0.45, 0.45)  # PySlowFast / PyTorchVideo
KINETICS_STD = (0.225, 0.225, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)  # maps [0, 1] to [-1, 1] (I3D)
INCEPTION_STD = (0.5, 0.5, 0.5)

SAMPLINGS = ("segment", "dense")


@dataclass(frozen=True)
class Result:
    """A published accuracy, with the protocol it was measured under."""

    dataset: str
    top1: float
    top5: Optional[float] = None
    views: str = ""  # e.g. "10 clips x 3 crops, 256 px"
    source: str = ""  # where the number comes from (repo README, paper table)


@dataclass(frozen=True)
class ModelInfo:
    """Input protocol, reference cost and published results of one model.

    Frames: the model always takes ``[B, 3, num_frames, H, W]``. For segment sampling
    (TSN/TSM/PAN) ``num_frames = num_segments * frames_per_segment``: the sampler draws
    ``frames_per_segment`` consecutive frames in each of ``num_segments`` segments. For
    dense sampling (3D CNNs) ``num_segments == 1`` and the clip spans
    ``num_frames * sampling_rate`` source frames.
    """

    name: str
    family: str
    paper: str
    num_frames: int
    num_segments: int = 1
    frames_per_segment: int = 1
    sampling: str = "segment"
    sampling_rate: int = 1
    crop_size: int = 224
    resize_size: int = 256  # short side before cropping, at test time
    train_scales: Tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)  # TSN multi-scale crop
    train_jitter: Tuple[int, int] = (256, 320)  # short-side range for SlowFast-style jitter
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    test_views: Tuple[int, int] = (1, 1)  # clips x spatial crops
    num_classes: int = 400
    dataset: str = "kinetics400"  # the label set `num_classes` refers to
    ref_gflops: Optional[float] = None  # fvcore convention (1 multiply-add = 1 FLOP), canonical input
    ref_params_m: Optional[float] = None  # millions, with `num_classes` outputs
    results: Tuple[Result, ...] = ()
    checkpoints: Tuple[str, ...] = ()  # official release files this family's filter loads
    min_size: int = 32  # smallest spatial size the model accepts (tests build at this size)
    notes: str = ""
    # the small preset `zoo compare` trains on SynthMotion: `model_args` (architecture overrides
    # for zoo.build) and `frames` (clip length T); models with the same bench network share a run
    bench: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self):
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if self.num_segments * self.frames_per_segment != self.num_frames and self.sampling == "segment":
            raise ValueError(
                f"{self.name}: num_segments ({self.num_segments}) x frames_per_segment "
                f"({self.frames_per_segment}) must equal num_frames ({self.num_frames})")

    @property
    def input_shape(self) -> Tuple[int, int, int, int]:
        """Canonical input of one view, without the batch dimension: (C, T, H, W)."""
        return (3, self.num_frames, self.crop_size, self.crop_size)

    @property
    def value_range(self) -> Tuple[float, float]:
        """Range of the normalised input for frames in [0, 1] (e.g. (-1, 1) for I3D)."""
        lo = min((0.0 - m) / s for m, s in zip(self.mean, self.std))
        hi = max((1.0 - m) / s for m, s in zip(self.mean, self.std))
        return (round(lo, 4), round(hi, 4))

    @property
    def num_views(self) -> int:
        return self.test_views[0] * self.test_views[1]

    def replace(self, **changes) -> "ModelInfo":
        return replace(self, **changes)
