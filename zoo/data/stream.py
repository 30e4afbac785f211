"""One pass over a video file or a live source (webcam, RTSP / HTTP stream), in decode order.

`FrameStream` decodes every frame once and hands it on as a `StreamFrame` (index in decode
order, presentation time in seconds, the PyAV frame); converting to RGB (``array()``) is left to
the consumer, so frames nobody needs cost only their decoding. Nothing is kept: memory is what
the consumer holds, whatever the video's length.

Sources: a file path; a URL (``rtsp://``, ``http://``, ``https://``, ``udp://``, ``tcp://``, ...);
a V4L2 device (``/dev/video0``, opened with FFmpeg's ``v4l2`` input); or ``FORMAT:DEVICE`` for
another FFmpeg input device (``avfoundation:0``, ``dshow:video=Camera``). Frames without a
timestamp (some live inputs) are timed as ``index / fps``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional

import numpy as np

from .decoders import DecodeError, frame_to_array

__all__ = ["FrameStream", "StreamFrame", "is_live_source"]

_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)
_DEVICE_FORMATS = ("v4l2", "avfoundation", "dshow", "x11grab", "gdigrab", "lavfi")


def is_live_source(source: str) -> bool:
    """True for a URL or a capture device: sources with no end known in advance."""
    return bool(_URL.match(source)) or source.startswith("/dev/video") or \
        source.split(":", 1)[0] in _DEVICE_FORMATS


def _open_args(source: str, format: Optional[str]):
    if format:
        return source, format
    if source.startswith("/dev/video"):
        return source, "v4l2"
    prefix, _, device = source.partition(":")
    if prefix in _DEVICE_FORMATS and device:
        return device, prefix
    return source, None


@dataclass
class StreamFrame:
    index: int  # 0-based, in decode order
    time: float  # presentation time, seconds from the stream's start
    frame: Any  # the PyAV VideoFrame

    def array(self) -> np.ndarray:
        """uint8 RGB ``[H, W, 3]``, upright."""
        return frame_to_array(self.frame)


class FrameStream:
    """Decode ``source`` once, in order (see the module docstring). Use as a context manager.

    ``options``: FFmpeg options for opening it (e.g. ``{"rtsp_transport": "tcp"}``);
    ``timeout``: seconds to wait for a network source before giving up.
    """

    def __init__(self, source: str, *, threads: int = 0, format: Optional[str] = None,
                 options: Optional[Dict[str, str]] = None, timeout: float = 10.0):
        import av

        self.source = str(source)
        self.live = is_live_source(self.source)
        if not self.live and not os.path.exists(self.source):
            raise DecodeError(self.source, "file not found")
        if os.path.isdir(self.source):
            raise DecodeError(self.source, "a directory: streams are read from a video file, a URL or a device")
        target, fmt = _open_args(self.source, format)
        self.timeout = timeout
        try:
            self.container = av.open(target, format=fmt, options=dict(options or {}),
                                     timeout=timeout if self.live else None)
        except av.ExitError:  # FFmpeg's interrupt: the timeout passed with no answer
            raise DecodeError(self.source, f"cannot open: no answer within {timeout:g} s (the timeout; is the "
                                           f"source up?)") from None
        except (av.FFmpegError, OSError) as e:
            raise DecodeError(self.source, f"cannot open ({type(e).__name__}: {e})") from None
        if not self.container.streams.video:
            self.container.close()
            raise DecodeError(self.source, "no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.stream.codec_context.thread_count = threads
        rate = self.stream.average_rate or self.stream.guessed_rate or self.stream.base_rate
        self.fps = float(rate) if rate else 30.0
        self.fps_known = bool(rate)
        tb, s = self.stream.time_base, self.stream
        duration = float(s.duration * tb) if s.duration is not None and tb else (
            self.container.duration / 1e6 if self.container.duration else None)
        self.duration: Optional[float] = None if self.live else duration
        # frames the header promises (an estimate; 0 when unknown, e.g. live)
        self.num_frames = int(s.frames or (round(duration * self.fps) if duration and not self.live else 0))
        self.width, self.height = s.codec_context.width, s.codec_context.height
        self._start = s.start_time if s.start_time is not None else 0

    def __iter__(self) -> Iterator[StreamFrame]:
        import av

        tb = self.stream.time_base
        i = -1
        try:
            for i, frame in enumerate(self.container.decode(self.stream)):
                t = float((frame.pts - self._start) * tb) if frame.pts is not None and tb else i / self.fps
                yield StreamFrame(i, t, frame)
        except av.ExitError:  # FFmpeg's interrupt: no data within the timeout
            raise DecodeError(self.source, f"stalled: no data for {self.timeout:g} s after {i + 1} frames (the "
                                           f"timeout)") from None
        except av.FFmpegError as e:
            raise DecodeError(self.source, f"decoding failed after {i + 1} frames ({type(e).__name__}: {e})") from None

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> "FrameStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
