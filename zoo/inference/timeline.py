"""Sliding-window timelines of long videos, and the segments of one action they smooth into.

A window is what a model classifies: ``window`` consecutive source frames, sampled with the
model's own test sampler (one clip, centre crop) as if the window were a whole video, so a
window over a whole clip gives exactly `zoo predict`'s one-view prediction. Windows start every
``stride`` frames. Default window: a dense (3D) model's clip span (``num_frames x
sampling_rate`` frames); a segment model (TSN / TSM / PAN) spans a whole training video, so its
window is the typical length of its dataset's clips (`TYPICAL_CLIP_SECONDS`).

`sliding_windows` decodes the video once (`zoo.data.stream.FrameStream`), converts only the
frames some window samples, resizes each as soon as it is decoded (short side to the model's
``resize_size``) and drops it once every window that samples it has run: memory is bounded by
one window, whatever the video's length or resolution. Windows are classified in batches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .._errors import UsageError

__all__ = ["TYPICAL_CLIP_SECONDS", "WindowPlan", "Window", "plan_windows", "resize_frame", "sliding_windows",
           "segments", "SEGMENT_FILTER", "expected_windows"]

# typical clip length (s) of each training set: the span a segment model's clip covers
TYPICAL_CLIP_SECONDS = {
    "kinetics400": 10.0, "kinetics600": 10.0, "kinetics700": 10.0,  # trimmed to 10 s by construction
    "something-something-v2": 4.0, "something-something-v1": 4.0,  # 2-6 s, about 4 s on average
    "ucf101": 7.2,  # mean clip length in the UCF101 paper
}
FALLBACK_CLIP_SECONDS = 10.0


@dataclass(frozen=True)
class WindowPlan:
    """Where windows lie in a stream at ``fps``: ``window`` frames each, one every ``stride``
    frames; ``clip``: the frames (offsets within a window) the model sees."""

    fps: float
    window: int
    stride: int
    clip: Tuple[int, ...]
    reason: str = ""  # how the window length was chosen

    @property
    def window_sec(self) -> float:
        return self.window / self.fps

    @property
    def stride_sec(self) -> float:
        return self.stride / self.fps

    @property
    def overlap(self) -> int:
        """How many windows cover one instant (window / stride, rounded up)."""
        return -(-self.window // self.stride)

    def sampled(self, index: int) -> bool:
        """Does some window sample frame ``index``? (The first window keeps every frame: a video
        shorter than one window is sampled over what it has.)"""
        return index < self.window or any(index >= o and (index - o) % self.stride == 0 for o in self.clip)

    def describe(self) -> str:
        return (f"window {self.window_sec:.2f} s ({self.window} frames at {self.fps:g} fps; {self.reason}), "
                f"stride {self.stride_sec:.2f} s, {len(self.clip)} frames sampled per window")


def _clip_offsets(info, frames: int) -> np.ndarray:
    from ..data import build_sampler

    return build_sampler(info, num_clips=1)(frames)[0]


def plan_windows(info, fps: float, window_sec: Optional[float] = None, stride_sec: Optional[float] = None) -> WindowPlan:
    """The windows for a model with input protocol ``info`` on a stream at ``fps`` (see the module
    docstring for the defaults; ``stride_sec`` defaults to 1 s, at most the window)."""
    if window_sec is not None and window_sec <= 0 or stride_sec is not None and stride_sec <= 0:
        raise UsageError(f"--window-sec and --stride-sec must be > 0, got {window_sec} and {stride_sec}")
    if window_sec is not None:
        window, reason = max(1, round(window_sec * fps)), "--window-sec"
    elif info.sampling == "dense":
        window = info.num_frames * info.sampling_rate
        reason = f"one clip: {info.num_frames} frames x rate {info.sampling_rate}"
    else:
        seconds = TYPICAL_CLIP_SECONDS.get(info.dataset)
        reason = f"a typical {info.dataset} clip" if seconds else \
            f"no typical clip length known for {info.dataset!r}: Kinetics' {FALLBACK_CLIP_SECONDS:g} s; set --window-sec"
        window = max(info.num_segments, round((seconds or FALLBACK_CLIP_SECONDS) * fps))
    stride = max(1, min(window, round((1.0 if stride_sec is None else stride_sec) * fps)))
    return WindowPlan(fps=float(fps), window=int(window), stride=int(stride),
                      clip=tuple(int(i) for i in _clip_offsets(info, window)), reason=reason)


@dataclass
class Window:
    """One classified window: ``start`` / ``end`` in seconds, ``first_frame``, class ``probs``."""

    start: float
    end: float
    first_frame: int
    probs: torch.Tensor  # [num_classes], softmax of the logits

    @property
    def centre(self) -> float:
        return 0.5 * (self.start + self.end)


def resize_frame(frame: np.ndarray, size: int) -> torch.Tensor:
    """An (H, W, 3) uint8 frame as a (3, H', W') tensor whose shorter side is ``size``."""
    from torchvision.transforms.v2 import functional as F

    # as ClipTransform resizes a clip (per frame: the same result), so a later resize of the
    # clip to this size is the identity
    return F.resize(torch.from_numpy(frame).permute(2, 0, 1), [size], antialias=True)


def sliding_windows(model, frames, plan: WindowPlan, info, *, batch: int = 4,
                    on_frame: Optional[Callable[[int], None]] = None) -> Iterator[Window]:
    """Classify the windows of ``plan`` over ``frames`` (an iterable of `StreamFrame`), in order.

    ``model`` takes ``[B, 3, T, S, S]`` clips normalised per ``info``; ``batch`` windows run per
    call. ``on_frame(index)`` is called per decoded frame (progress). When the source fails
    mid-way (`zoo.data.DecodeError`: a stall, a broken file), the windows complete by then are
    yielded before the error is raised."""
    from ..data import ClipTransform, DecodeError

    transform = ClipTransform(info, crops=1)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    kept: Dict[int, torch.Tensor] = {}
    times: Dict[int, float] = {}
    pending: List[Tuple[float, float, int, torch.Tensor]] = []
    k, last = 0, -1

    def clip_of(first: int, offsets: Sequence[int]) -> torch.Tensor:
        clip = torch.stack([kept[first + o] for o in offsets])
        return transform(clip, 0)[0][0]

    def run() -> Iterator[Window]:
        with torch.inference_mode():
            probs = model(torch.stack([p[3] for p in pending]).to(device)).float().softmax(-1).cpu()
        for (start, end, first, _), p in zip(pending, probs):
            yield Window(start, end, first, p)
        pending.clear()

    try:
        for f in frames:
            last = f.index
            times[last] = f.time
            if plan.sampled(last):
                kept[last] = resize_frame(f.array(), info.resize_size)
            if on_frame is not None:
                on_frame(last)
            while k * plan.stride + plan.window - 1 <= last:  # window k is complete
                first = k * plan.stride
                end = times[first + plan.window - 1] + 1.0 / plan.fps
                pending.append((times[first], end, first, clip_of(first, plan.clip)))
                k += 1
                for i in [i for i in kept if i < k * plan.stride]:
                    del kept[i]
                for i in [i for i in times if i < k * plan.stride]:
                    del times[i]
                if len(pending) == batch:
                    yield from run()
    except DecodeError:  # a source that stalls or breaks mid-way: the complete windows still come
        if pending:
            yield from run()
        raise
    if k == 0 and last >= 0:  # shorter than one window: one window over all of it
        pending.append((times[0], times[last] + 1.0 / plan.fps, 0, clip_of(0, _clip_offsets(info, last + 1))))
    if pending:
        yield from run()


SEGMENT_FILTER = ("probabilities averaged over {smooth} consecutive windows (centred); each window labelled with "
                  "its top class; runs of one label merged; a run shorter than {min_windows} windows joins the "
                  "neighbour whose class it scores higher, until none is left; a segment runs from midway between "
                  "the window centres either side of its first change to midway at its last")


def segments(windows: Sequence[Window], *, smooth: int = 3, min_windows: int = 2) -> List[Dict]:
    """The windows' timeline as segments of one action (`SEGMENT_FILTER`): dicts with ``start``,
    ``end`` (s), ``label`` (class index), ``score`` (its mean smoothed probability) and ``windows``."""
    if smooth < 1 or min_windows < 1:
        raise UsageError(f"--smooth and --min-windows must be >= 1, got {smooth} and {min_windows}")
    if not windows:
        return []
    probs = torch.stack([w.probs for w in windows])
    n, half = len(windows), smooth // 2
    smoothed = torch.stack([probs[max(0, i - half):i + smooth - half].mean(0) for i in range(n)])
    labels = smoothed.argmax(1).tolist()
    runs = []  # [label, first, last] window indices, inclusive
    for i, c in enumerate(labels):
        if runs and runs[-1][0] == c:
            runs[-1][2] = i
        else:
            runs.append([c, i, i])
    while len(runs) > 1:
        short = [j for j, r in enumerate(runs) if r[2] - r[1] + 1 < min_windows]
        if not short:
            break
        j = min(short, key=lambda j: runs[j][2] - runs[j][1])
        neighbours = [x for x in (j - 1, j + 1) if 0 <= x < len(runs)]
        span = smoothed[runs[j][1]:runs[j][2] + 1]
        into = max(neighbours, key=lambda x: float(span[:, runs[x][0]].mean()))
        runs[into][1], runs[into][2] = min(runs[into][1], runs[j][1]), max(runs[into][2], runs[j][2])
        del runs[j]
        merged = [runs[0]]
        for r in runs[1:]:
            if r[0] == merged[-1][0]:
                merged[-1][2] = r[2]
            else:
                merged.append(r)
        runs = merged
    out = []
    for j, (c, a, b) in enumerate(runs):
        start = windows[0].start if j == 0 else 0.5 * (windows[a - 1].centre + windows[a].centre)
        end = windows[-1].end if j == len(runs) - 1 else 0.5 * (windows[b].centre + windows[b + 1].centre)
        out.append({"start": round(start, 3), "end": round(end, 3), "label": int(c),
                    "score": round(float(smoothed[a:b + 1, c].mean()), 4), "windows": b - a + 1})
    return out


def expected_windows(num_frames: int, plan: WindowPlan) -> int:
    """How many windows a stream of ``num_frames`` frames gives (for progress bars)."""
    if num_frames <= 0:
        return 0
    return max(1, math.floor((num_frames - plan.window) / plan.stride) + 1) if num_frames >= plan.window else 1
