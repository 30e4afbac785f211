"""Live classification of a stream that does not wait: webcams, RTSP / HTTP streams, files played
in real time.

A reader thread decodes the source (`zoo.data.stream.FrameStream`), paced by the frames'
timestamps (a file plays at its own speed; a live source arrives so anyway), and resizes each
frame (short side to the model's ``resize_size``) into a ring buffer of the last ``window``
frames. The model runs on the newest data whenever it is free, so it never lags the source: what
it cannot keep up with is dropped and counted.

- ``online`` (a model built with ``online=True``, e.g. online TSM): one prediction per processed
  frame, at one frame's cost (the model's ``stream()``: `zoo.models.tsm.TSMStream`,
  `zoo.models.movinet.MoViNetStream`); the
  probabilities are the softmax of the per-frame logits averaged over the last ``num_segments``
  processed frames (the offline model's consensus). Frames that arrive while the model is busy
  are dropped.
- ``sliding`` (every other model): one window (`zoo.inference.timeline.WindowPlan`) ending at
  the newest frame every ``stride`` frames, the model's test sampler over it; a prediction costs
  one clip. Windows due while the model is busy are dropped.

The fast path (`zoo.optimize`, fp32 or bf16) streams too: an online model runs its optimized
copy frame by frame.
"""
from __future__ import annotations

import collections
import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Deque, Iterator, List, Optional, Tuple

import torch

from .._errors import UsageError
from .timeline import WindowPlan, resize_frame

__all__ = ["LivePrediction", "LiveRunner", "is_online"]


@dataclass
class LivePrediction:
    frame_index: int  # the newest frame this prediction used
    time: float  # its time in the source, seconds
    probs: torch.Tensor  # [num_classes]
    latency: float  # seconds from that frame's arrival to this prediction
    dropped: int  # frames (online) or windows (sliding) skipped so far


def _inner(model):
    """(the model the fast path wraps, or the model; its autocast dtype or None)."""
    inner = getattr(model, "model", None)
    if inner is not None and hasattr(model, "dtype") and hasattr(inner, "info"):
        return inner, model.dtype if model.dtype == torch.bfloat16 else None
    return model, None


def is_online(model) -> bool:
    """Does ``model`` (or the model the fast path wraps) stream one frame per prediction?"""
    from ..models import VideoModel

    inner, _ = _inner(model)
    return isinstance(inner, VideoModel) and inner.online


class _Reader(threading.Thread):
    """Decodes, paces and resizes frames into the ring buffer; the newest frame is always there."""

    def __init__(self, frames, size: int, keep: int, pace: bool, drop: bool):
        super().__init__(daemon=True)
        self.frames, self.size, self.pace, self.drop = frames, size, pace, drop
        self.ring: Deque[Tuple[int, float, float, torch.Tensor]] = collections.deque(maxlen=keep)
        self.cond = threading.Condition()
        self.done, self.error, self.stop = False, None, False
        self.due = 0  # without dropping: the reader waits for the prediction that ends at frame `due`

    def run(self):
        start = first = None
        try:
            for f in self.frames:
                if self.stop:
                    break
                if self.pace:
                    if start is None:
                        start, first = time.perf_counter(), f.time
                    delay = start + (f.time - first) - time.perf_counter()
                    if delay > 0:
                        with self.cond:  # a stop request ends the wait
                            self.cond.wait_for(lambda: self.stop, timeout=delay)
                        if self.stop:
                            break
                item = (f.index, f.time, time.perf_counter(), resize_frame(f.array(), self.size))
                with self.cond:
                    while not self.drop and f.index > self.due and not self.stop:
                        self.cond.wait(0.5)
                    self.ring.append(item)
                    self.cond.notify()
        except Exception as e:  # handed to the consumer
            self.error = e
        finally:
            with self.cond:
                self.done = True
                self.cond.notify()

    def wait_for(self, ready, due: int) -> Optional[List]:
        """A snapshot of the ring once ``ready(ring)``; None when the source has ended. ``due``:
        the last frame of the prediction to come."""
        with self.cond:
            self.due = due
            self.cond.notify()
            while not ready(self.ring):
                if self.done:
                    if self.error is not None:
                        raise self.error
                    return None
                self.cond.wait(0.5)
            return list(self.ring)


class LiveRunner:
    """Run ``model`` (input protocol ``info``) live on a stream; see the module docstring.
    ``plan``: the windows of a sliding model (ignored for an online one)."""

    def __init__(self, model, info, plan: Optional[WindowPlan] = None):
        from ..data import ClipTransform

        self.model, self.info, self.plan = model, info, plan
        self.online = is_online(model)
        if not self.online and plan is None:
            raise UsageError("a sliding-window model needs a WindowPlan (zoo.inference.timeline.plan_windows)")
        self.transform = ClipTransform(info, crops=1)
        self.mode = "online" if self.online else "sliding"
        self.last_frame: Optional[torch.Tensor] = None  # uint8 [3, H, W]: the newest frame of the last prediction

    def cost(self) -> str:
        """What one prediction costs, in words."""
        if self.online:
            return "one frame per prediction, the past carried in the model's stream state"
        return (f"one {len(self.plan.clip)}-frame clip per prediction, one every {self.plan.stride} frames "
                f"({self.plan.stride_sec:.2f} s), over the last {self.plan.window} frames ({self.plan.window_sec:.2f} s)")

    def run(self, frames, *, pace: bool = True, drop: bool = True) -> Iterator[LivePrediction]:
        """Predictions as the model keeps up with ``frames`` (an iterable of `StreamFrame`), paced
        by their timestamps unless ``pace`` is False (then frames come as fast as they decode).
        ``drop=False`` holds the source back instead of dropping (every frame or window runs:
        throughput measurements and tests; a live source would then lag). When the iteration
        ends (or is closed, or interrupted), the reader thread is stopped and joined: the source
        can then be closed safely."""
        keep = 1 if self.online else self.plan.window
        reader = _Reader(frames, self.info.resize_size, keep, pace, drop)
        reader.start()
        try:
            yield from (self._online(reader) if self.online else self._sliding(reader))
        finally:  # the reader stops and ends before the caller may close the source under it
            with reader.cond:
                reader.stop = True
                reader.cond.notify()
            reader.join()

    def _normalised(self, frames: List[torch.Tensor]) -> torch.Tensor:
        return self.transform(torch.stack(frames), 0)[0][0]  # [3, T, S, S]

    def _online(self, reader: _Reader) -> Iterator[LivePrediction]:
        inner, dtype = _inner(self.model)
        recent: Deque[torch.Tensor] = collections.deque(maxlen=self.info.num_segments)
        last, dropped = -1, 0
        autocast = torch.autocast("cpu", dtype=dtype) if dtype is not None else contextlib.nullcontext()
        with inner.stream() as stream, torch.inference_mode(), autocast:
            while True:
                ring = reader.wait_for(lambda r: r and r[-1][0] > last, last + 1)
                if ring is None:
                    return
                index, t, arrived, frame = ring[-1]
                self.last_frame = frame
                dropped += index - last - 1
                last = index
                x = self._normalised([frame])[:, 0][None]  # [1, 3, S, S]
                if x.device.type == "cpu" and getattr(self.model, "channels_last", False):
                    x = x.contiguous(memory_format=torch.channels_last)
                recent.append(stream(x).float()[0])
                probs = torch.stack(list(recent)).mean(0).softmax(-1)
                yield LivePrediction(index, t, probs, time.perf_counter() - arrived, dropped)

    def _sliding(self, reader: _Reader) -> Iterator[LivePrediction]:
        plan, due, dropped = self.plan, self.plan.window - 1, 0
        while True:
            ring = reader.wait_for(lambda r: len(r) == plan.window and r[-1][0] >= due, due)
            if ring is None:
                return
            index, t, arrived, self.last_frame = ring[-1]
            missed = (index - due) // plan.stride
            dropped += missed
            due += (missed + 1) * plan.stride
            clip = self._normalised([ring[o][3] for o in plan.clip])
            with torch.inference_mode():
                probs = self.model(clip[None]).float().softmax(-1)[0]
            yield LivePrediction(index, t, probs, time.perf_counter() - arrived, dropped)
