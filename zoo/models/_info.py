"""The typed records that describe a registered model.

`ModelInfo` is the architecture's input protocol and reference cost: the single source of
truth read by the samplers, the transforms, the evaluation harness and the model cards.
`Weights` is one released checkpoint (or file set) with its number of classes and published
results; `BenchPreset` is the small network ``zoo compare`` trains on SynthMotion. Both are
registered beside the builder. Nothing outside a model's own file branches on its name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Optional, Tuple

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINETICS_MEAN = (0.45, 0.45, 0.45)  # PySlowFast / PyTorchVideo
KINETICS_STD = (0.225, 0.225, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)  # maps [0, 1] to [-1, 1] (I3D)
INCEPTION_STD = (0.5, 0.5, 0.5)

SAMPLINGS = ("segment", "dense")
FRAMES_ARGS = (None, "num_segments", "num_frames")
# how a video's view scores combine: the mean of the softmax, the mean of the logits, or the per-class
# maximum of the softmax (zoo.engine.metrics.aggregate_views)
VIEW_AGGREGATIONS = ("prob-mean", "logit-mean", "max")


@dataclass(frozen=True)
class Result:
    """A published accuracy, with the protocol it was measured under."""

    dataset: str
    top1: float
    top5: Optional[float] = None
    views: str = ""  # e.g. "10 clips x 3 crops, 256 px"
    source: str = ""  # where the number comes from (repo README, paper table)


_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z.]+$")  # torch.hub / MMAction2: name-<sha256 prefix>.pth


@dataclass(frozen=True)
class Weights:
    """One released checkpoint of a model, or one file set (PAN Full/En: one file per stream).

    ``files`` are release URLs, or bare file names where the release is only on a page to fetch
    by hand (``page``: Google Drive, Baidu, Weiyun), in the order the family filter takes them
    (empty where the release names no file for a published result). ``tag`` names the record
    within its model (e.g. ``kinetics400``, ``sthv2``); the first record is the model's default.
    ``digests`` holds a published sha256 (or prefix) per file; by default the prefix a torch.hub
    / MMAction2 file name carries. ``labels`` names the class-name list (package data, default:
    ``dataset``). ``model_args`` are architecture options the release needs; ``input_args``
    are `ModelInfo` fields of its test protocol that differ from the model's defaults.
    """

    tag: str
    num_classes: int
    dataset: str  # the label set the classifier was trained on
    files: Tuple[str, ...] = ()
    results: Tuple[Result, ...] = ()
    source: str = ""  # the project that released it
    notes: str = ""
    page: str = ""  # where to fetch the files by hand when they have no direct URL
    digests: Tuple[str, ...] = ()  # published sha256 digests or prefixes, one per file ("" = none)
    labels: str = ""  # class-name list (zoo/models/categories/<labels>.txt); default: dataset
    model_args: Mapping[str, Any] = field(default_factory=dict, hash=False)
    input_args: Mapping[str, Any] = field(default_factory=dict, hash=False)
    # model options of the release's own test, applied when reproducing its number (`zoo eval --published`)
    eval_args: Mapping[str, Any] = field(default_factory=dict, hash=False)
    model: str = ""  # set at registration

    def __post_init__(self):
        if self.digests and len(self.digests) != len(self.files):
            raise ValueError(f"{self.tag}: digests needs one entry per file ({len(self.files)})")

    @property
    def name(self) -> str:
        """``model.tag``, the name `zoo.weights_info` and ``zoo weights fetch`` take."""
        return f"{self.model}.{self.tag}"

    @property
    def urls(self) -> Tuple[str, ...]:
        """Direct download URLs (empty for releases fetched by hand from ``page``)."""
        return tuple(f for f in self.files if "://" in f)

    @property
    def file_names(self) -> Tuple[str, ...]:
        return tuple(f.rsplit("/", 1)[-1] for f in self.files)

    @property
    def hashes(self) -> Tuple[Optional[str], ...]:
        """The published sha256 (or prefix) of each file, None where the release publishes none."""
        if self.digests:
            return tuple(h or None for h in self.digests)
        found = [_HASH_IN_NAME.search(n) for n in self.file_names]
        return tuple(m.group(1) if m else None for m in found)

    @property
    def sha256(self) -> Optional[str]:
        """The published sha256 (or prefix) of a one-file release; None if none is published
        (or for a file set: see `hashes`)."""
        return self.hashes[0] if len(self.files) == 1 else None

    @property
    def label_set(self) -> str:
        return self.labels or self.dataset

    @property
    def categories(self) -> Tuple[str, ...]:
        """Class names in the classifier's index order (package data; empty if none ships)."""
        from ._categories import categories

        return categories(self.label_set)


@dataclass(frozen=True)
class BenchPreset:
    """The small network ``zoo compare`` trains from scratch on SynthMotion (32 px): ``frames``
    (clip length T) and ``model_args`` (architecture overrides for `zoo.build`, JSON-safe: lists,
    not tuples). Models with the same bench network share one training run."""

    frames: int
    model_args: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class ModelInfo:
    """Input protocol and reference cost of one model architecture.

    Frames: the model always takes ``[B, 3, num_frames, H, W]``. For segment sampling
    (TSN/TSM/PAN) ``num_frames = num_segments * segment_length``: the sampler draws
    ``frames_per_segment`` consecutive frames in each of ``num_segments`` segments, followed,
    with ``centre_frame``, by the frame a one-frame segment sampler picks there (PAN Full/En:
    the official RGB loader's frame, for the RGB stream beside the PA streams). For dense
    sampling (3D CNNs) ``num_segments == 1`` and the clip spans ``num_frames * sampling_rate``
    source frames.
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
    num_classes: int = 400  # the classifier `zoo.build(name)` makes (the first weights record's)
    dataset: str = "kinetics400"  # the label set `num_classes` refers to
    ref_gflops: Optional[float] = None  # fvcore convention (1 multiply-add = 1 FLOP), canonical input
    ref_params_m: Optional[float] = None  # millions, with `num_classes` outputs
    min_size: int = 32  # smallest spatial size the model accepts (tests build at this size)
    # the constructor argument the clip length fixes: "num_segments" (T / frames_per_segment, segment
    # models) or "num_frames" (T, e.g. a head pooling window); None: the model takes any T
    frames_arg: Optional[str] = None
    centre_frame: bool = False  # segment models: each segment also carries its 1-frame-sampler frame
    # segment models, how clips are placed (zoo.data.samplers): "dense" (TSN segments; TSM's dense windows
    # beyond 2 test clips), "shifted" (every test clip's segments shifted by a fraction of a segment:
    # TCPNet's ten_clips_sample) or "dense_sample" (TSM's dense windows for every clip, training included)
    segment_clips: str = "dense"
    # how the official test combines the views (`VIEW_AGGREGATIONS`): `zoo eval` and `zoo predict` default to it
    view_aggregation: str = "prob-mean"
    notes: str = ""

    def __post_init__(self):
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if self.segment_clips not in ("dense", "shifted", "dense_sample"):
            raise ValueError(f"{self.name}: segment_clips must be 'dense', 'shifted' or 'dense_sample', "
                             f"got {self.segment_clips!r}")
        if self.view_aggregation not in VIEW_AGGREGATIONS:
            raise ValueError(f"{self.name}: view_aggregation must be one of {VIEW_AGGREGATIONS}, "
                             f"got {self.view_aggregation!r}")
        if self.frames_arg not in FRAMES_ARGS:
            raise ValueError(f"{self.name}: frames_arg must be one of {FRAMES_ARGS}, got {self.frames_arg!r}")
        if self.num_segments * self.segment_length != self.num_frames and self.sampling == "segment":
            raise ValueError(
                f"{self.name}: num_segments ({self.num_segments}) x segment_length "
                f"({self.segment_length}) must equal num_frames ({self.num_frames})")

    @property
    def segment_length(self) -> int:
        """Input frames per segment: ``frames_per_segment``, plus one with ``centre_frame``."""
        return self.frames_per_segment + int(self.centre_frame)

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
