"""Temporal samplers: which 0-based frame indices make up each clip of a video.

A sampler is called as ``sampler(num_frames, rng) -> list of int arrays``, one array per clip
(temporal view), each of length ``info.num_frames``. All indices lie in ``[0, num_frames)``.

Segment sampling (TSN/TSM/PAN, ``TSM:ops/dataset.py:106-163``), with ``T`` segments of ``L``
consecutive frames:

- train: ``avg = (n - L + 1) // T``; offsets ``k*avg + randint(avg)``; if ``avg == 0`` and
  ``n > T``, sorted random offsets; otherwise zeros.
- test (also used for validation): segment centres ``int(tick/2 + tick*k)`` with
  ``tick = (n - L + 1) / T``, without the reference's ``n > T + L - 1`` guard (which would map
  every frame of a short video to frame 0); 2 clips add the segment starts ``int(tick*k)``
  (``twice_sample``); more than 2 clips use TSM's ``dense_sample`` windows: ``T`` frames
  ``64 // T`` apart, starts ``linspace(0, max(0, n - 64), clips)``, indices taken modulo ``n``;
  or, with ``info.segment_clips == "shifted"`` (TCPNet's ``ten_clips_sample``), ``N`` clips of
  segments whose offsets are ``int(tick / N * k + tick * j)`` for ``k = 1 .. N - 1`` and then
  ``k = 0`` (2 clips: the same two as ``twice_sample``).
- ``info.segment_clips == "dense_sample"`` (TSM's ``--dense_sample`` in training too: BQN's Kinetics
  recipe): every clip is a dense window; in training its start is drawn as TSM's
  (``randint(0, n - 64)`` when the video is longer than 64 frames, else 0), at test ``N`` windows start
  at ``linspace(0, max(0, n - 64), N)``, one window at ``max(0, n - 64) // 2``.
- each offset is followed by ``L - 1`` consecutive frames, clamped to the last frame.
- ``centre_frame`` (PAN Full/En): each segment's ``L`` frames are followed by the frame the same
  rule picks with ``L = 1`` (test: ``int(tick1/2 + tick1*k)``, ``tick1 = n / T``, the official
  RGB loader's frame; train: drawn like a 1-frame segment; dense windows: the window's frame).

Dense sampling (3D CNNs, PySlowFast ``decoder.py``): a window of ``span = T * rate`` frames;
indices ``floor(linspace(start, start + span - 1, T))``. ``delta = max(n - span, 0)``.

- train: ``start = uniform(0, delta)``.
- test: one clip is centred (``delta / 2``); ``N`` clips start at ``delta * i / (N - 1)`` so
  that they cover the video from its first to its last frame (``starts="uniform"``), or at
  PySlowFast's default ``delta * i / N`` (``starts="slowfast"``).

Short videos (``n < span``): ``short="clamp"`` (default, PySlowFast) repeats the last frame;
``short="loop"`` wraps around to the start (TSM ``dense_sample``). Rates are in source frames:
unlike PySlowFast there is no resampling to a 30 fps target rate.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from .._errors import BadData, UsageError

__all__ = ["segment_offsets", "SegmentSampler", "DenseSampler", "build_sampler", "dense_clip_starts", "SEGMENT_CLIPS",
           "DENSE_WINDOW"]

# how clips are placed under segment sampling (see the module docstring): "dense" (TSN segments, TSM's dense
# windows beyond 2 test clips), "shifted" (TCPNet's shifted test clips), "dense_sample" (dense windows always)
SEGMENT_CLIPS = ("dense", "shifted", "dense_sample")
DENSE_WINDOW = 64  # frames a TSM dense_sample window spans (its segment starts are DENSE_WINDOW // T apart)


def _rng(rng: Optional[np.random.Generator]) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng()


def segment_offsets(num_frames: int, num_segments: int, length: int = 1, *, train: bool = False,
                    twice: bool = False, rng: Optional[np.random.Generator] = None) -> List[np.ndarray]:
    """Start offsets (0-based) of the ``num_segments`` segments: one array, or two with ``twice``."""
    n, T, L = int(num_frames), int(num_segments), int(length)
    if n <= 0:
        raise BadData(f"video has no frames (num_frames={n})")
    if train:
        r = _rng(rng)
        avg = (n - L + 1) // T
        if avg > 0:
            off = np.arange(T) * avg + r.integers(0, avg, T)
        elif n > T:
            off = np.sort(r.integers(0, n - L + 1, T))
        else:
            off = np.zeros(T, dtype=np.int64)
        return [off.astype(np.int64)]
    tick = (n - L + 1) / T
    centres = np.array([int(tick / 2.0 + tick * k) for k in range(T)], dtype=np.int64)
    out = [np.clip(centres, 0, n - 1)]
    if twice:
        out.append(np.clip(np.array([int(tick * k) for k in range(T)], dtype=np.int64), 0, n - 1))
    return out


def _expand(offsets: np.ndarray, length: int, n: int) -> np.ndarray:
    """Each offset followed by ``length - 1`` consecutive frames, clamped to the last frame."""
    return np.minimum(offsets[:, None] + np.arange(length)[None], n - 1).reshape(-1)


class SegmentSampler:
    """TSN segments of ``frames_per_segment`` consecutive frames; see the module docstring."""

    def __init__(self, num_segments: int, frames_per_segment: int = 1, *, train: bool = False,
                 num_clips: int = 1, dense_window: int = DENSE_WINDOW, centre_frame: bool = False, clips: str = "dense"):
        if train and num_clips != 1:
            raise UsageError("training samples one clip per video")
        if clips not in SEGMENT_CLIPS:
            raise UsageError(f"segment clips must be one of {', '.join(SEGMENT_CLIPS)}, got {clips!r}")
        self.T, self.L, self.train, self.num_clips = num_segments, frames_per_segment, train, num_clips
        self.dense_window, self.centre_frame, self.clips = dense_window, centre_frame, clips

    def _offsets(self, n: int, length: int, rng) -> List[np.ndarray]:
        if self.clips == "shifted" and self.num_clips > 1 and not self.train:
            tick, clips = (n - length + 1) / self.T, self.num_clips
            return [np.clip(np.array([int(tick / clips * k + tick * j) for j in range(self.T)], dtype=np.int64), 0, n - 1)
                    for k in (*range(1, clips), 0)]
        windows = self.clips == "dense_sample"
        if self.num_clips <= 2 and not windows:
            return segment_offsets(n, self.T, length, train=self.train, twice=self.num_clips == 2, rng=rng)
        stride = max(1, self.dense_window // self.T)  # TSM dense_sample: windows wrapped modulo n
        last = max(0, n - self.dense_window)
        if self.train:  # TSM's draw: randint(0, sample_pos - 1) with sample_pos = max(1, 1 + n - 64)
            starts = [_rng(rng).integers(0, last) if last > 0 else 0]
        elif self.num_clips == 1 and windows:
            starts = [last // 2]
        else:
            starts = np.linspace(0, last, self.num_clips).astype(np.int64)
        return [(s + np.arange(self.T) * stride) % n for s in starts]

    def __call__(self, num_frames: int, rng: Optional[np.random.Generator] = None) -> List[np.ndarray]:
        n = int(num_frames)
        clips = [_expand(o, self.L, n).reshape(self.T, self.L) for o in self._offsets(n, self.L, rng)]
        if self.centre_frame:
            singles = self._offsets(n, 1, rng)
            clips = [np.concatenate([c, s[:, None]], 1) for c, s in zip(clips, singles)]
        return [c.reshape(-1) for c in clips]

    def __repr__(self):
        extra = (", centre_frame" if self.centre_frame else "") + {"dense": "", "shifted": ", shifted clips",
                                                                   "dense_sample": ", dense windows"}[self.clips]
        return f"SegmentSampler(T={self.T}, L={self.L}, train={self.train}, clips={self.num_clips}{extra})"


def dense_clip_starts(delta: float, num_clips: int, starts: str = "uniform") -> np.ndarray:
    """Test-time start frames of ``num_clips`` windows in a video with ``delta`` spare frames."""
    if starts == "slowfast":
        return np.array([delta * i / num_clips for i in range(num_clips)])
    if starts != "uniform":
        raise UsageError(f"starts must be 'uniform' or 'slowfast', got {starts!r}")
    if num_clips == 1:
        return np.array([delta / 2.0])
    return np.array([delta * i / (num_clips - 1) for i in range(num_clips)])


class DenseSampler:
    """``num_frames`` frames spread over ``num_frames * sampling_rate`` source frames."""

    def __init__(self, num_frames: int, sampling_rate: int = 1, *, train: bool = False, num_clips: int = 1,
                 short: str = "clamp", starts: str = "uniform"):
        if short not in ("clamp", "loop"):
            raise UsageError(f"short must be 'clamp' or 'loop', got {short!r}")
        if train and num_clips != 1:
            raise UsageError("training samples one clip per video")
        self.T, self.rate, self.train, self.num_clips = num_frames, sampling_rate, train, num_clips
        self.short, self.starts = short, starts

    def indices(self, num_frames: int, start: float) -> np.ndarray:
        n, span = int(num_frames), self.T * self.rate
        idx = np.floor(np.linspace(start, start + span - 1, self.T)).astype(np.int64)
        return idx % n if self.short == "loop" else np.clip(idx, 0, n - 1)

    def __call__(self, num_frames: int, rng: Optional[np.random.Generator] = None) -> List[np.ndarray]:
        n = int(num_frames)
        if n <= 0:
            raise BadData(f"video has no frames (num_frames={n})")
        delta = max(n - self.T * self.rate, 0)
        if self.train:
            starts = [_rng(rng).uniform(0, delta)]
        else:
            starts = dense_clip_starts(delta, self.num_clips, self.starts)
        return [self.indices(n, s) for s in starts]

    def __repr__(self):
        return f"DenseSampler(T={self.T}, rate={self.rate}, train={self.train}, clips={self.num_clips}, short={self.short!r})"


def build_sampler(info, *, train: bool = False, num_clips: Optional[int] = None, short: str = "clamp",
                  starts: str = "uniform"):
    """The sampler a model's info asks for; ``num_clips`` defaults to 1 in training, else ``info.test_views[0]``."""
    clips = 1 if train else (info.test_views[0] if num_clips is None else num_clips)
    if info.sampling == "segment":
        return SegmentSampler(info.num_segments, info.frames_per_segment, train=train, num_clips=clips,
                              centre_frame=info.centre_frame, clips=info.segment_clips)
    return DenseSampler(info.num_frames, info.sampling_rate, train=train, num_clips=clips, short=short, starts=starts)
