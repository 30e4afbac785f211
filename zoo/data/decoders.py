"""Frame decoders: video files through PyAV, frame folders through Pillow.

Both return uint8 RGB frames ``[N, H, W, 3]`` for 0-based frame indices (any order, repeats
allowed) and raise :class:`DecodeError` naming the file and the reason when they cannot.

PyAV policy (cf. PySlowFast ``pyav_decode_stream``): open once, read the metadata, then for
each run of wanted frames seek to the keyframe before the first one and decode only up to the
last one. Frame ``i`` is what a player shows at ``start_time + i / fps`` (``fps =
stream.average_rate``): the last frame whose timestamp rounds to slot ``i`` or earlier. On a
constant-rate file that is the i-th frame; a file with gaps in its timestamps (a 15 fps source
re-muxed on a 25 fps time base, dropped frames) or a variable frame rate shows the frame before a
gap in the gap's slots, so every slot of the header's count decodes. Streams without usable
timestamps (no pts, no rate) are decoded from the start and frames are counted instead. The
frame count comes from the container header, or from counting packets when the header has none
(Matroska). Frames are turned upright by the display-matrix rotation (phone videos). Frame
threading is on (``thread_type="AUTO"``); ``threads`` sets the count (0 = FFmpeg's choice; the
datasets use 1 per DataLoader worker).

Failures: missing file, zero bytes, not a container, no video stream, or a wanted frame that
cannot be decoded (truncated file) -> :class:`DecodeError`. Slots past the last decodable frame
repeat it when they lie within the largest step between the frames decoded, or
``TAIL_TOLERANCE`` (headers that overcount by a frame or two); further is truncation.

TorchCodec: ``torchcodec 0.17.0`` installs from PyPI here but cannot load, because it links
against the system FFmpeg libraries (absent; PyAV's wheel bundles its own). There is therefore
no TorchCodec backend; PyAV is the only video backend.
"""
from __future__ import annotations

import collections
import os
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from .._errors import BadData, UsageError

__all__ = ["DecodeError", "VideoMeta", "PyAVDecoder", "FrameFolderDecoder", "open_decoder", "frame_to_array",
           "TAIL_TOLERANCE"]

# The frame count in a container can overstate the decodable frames by a frame or two (rounded
# durations). Wanted frames that far past the last decoded one (or as far as the largest gap
# between decoded frames) repeat it; further is truncation.
TAIL_TOLERANCE = 2


class DecodeError(BadData, RuntimeError):
    """A video or frame folder could not be read. ``path`` and ``reason`` are attributes."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


@dataclass
class VideoMeta:
    num_frames: int
    fps: Optional[float]
    duration: Optional[float]  # seconds
    width: int
    height: int
    rotation: int = 0  # display-matrix rotation (degrees counter-clockwise), known once a frame is decoded
    has_timestamps: bool = True
    codec: str = ""


def _av():
    import av  # imported lazily so that `import zoo.data` stays light
    return av


class PyAVDecoder:
    """Selective decoding of one video file. Use as a context manager or call :meth:`close`.

    ``threads``: decoder threads (0 = FFmpeg's choice); frame+slice threading is always on.
    ``seek_gap``: wanted frames further apart than this are fetched with a new seek instead of
    decoding through the gap.
    """

    def __init__(self, path: str, threads: int = 0, seek_gap: int = 64):
        av = self._av = _av()
        self.path = str(path)
        self.seek_gap = seek_gap
        self._decoded_once = False
        if not os.path.exists(self.path):
            raise DecodeError(self.path, "file not found")
        if os.path.getsize(self.path) == 0:
            raise DecodeError(self.path, "empty file (0 bytes)")
        try:
            self.container = av.open(self.path)
        except av.FFmpegError as e:
            raise DecodeError(self.path, f"cannot open ({type(e).__name__}: {e})") from None
        try:
            if not self.container.streams.video:
                kinds = sorted({s.type for s in self.container.streams}) or ["none"]
                raise DecodeError(self.path, f"no video stream (streams: {', '.join(kinds)})")
            self.stream = self.container.streams.video[0]
            self.stream.thread_type = "AUTO"
            self.stream.codec_context.thread_count = threads
            self.meta = self._read_meta()
        except DecodeError:
            self.container.close()
            raise
        except av.FFmpegError as e:
            self.container.close()
            raise DecodeError(self.path, f"cannot read metadata ({type(e).__name__}: {e})") from None

    # -- metadata ---------------------------------------------------------------------------
    def _read_meta(self) -> VideoMeta:
        s = self.stream
        rate = s.average_rate or s.guessed_rate or s.base_rate
        fps = float(rate) if rate else None
        tb = s.time_base
        duration = None
        if s.duration is not None and tb:
            duration = float(s.duration * tb)
        elif self.container.duration:
            duration = self.container.duration / 1e6
        self._start = s.start_time if s.start_time is not None else 0
        has_ts = bool(fps and tb)
        n = s.frames or 0
        if n <= 0:
            # No frame count in the header (e.g. Matroska): count packets, no decoding needed.
            n = self._count_packets()
        cc = s.codec_context
        return VideoMeta(num_frames=int(n), fps=fps, duration=duration, width=cc.width, height=cc.height,
                         has_timestamps=has_ts, codec=cc.name)

    def _count_packets(self) -> int:
        n = 0
        for packet in self.container.demux(self.stream):
            if packet.size > 0:
                n += 1
        self.container.seek(0, stream=self.stream) if n else None
        return n

    # -- decoding ---------------------------------------------------------------------------
    def _slot_of(self, frame) -> Optional[int]:
        """The frame's slot on the stream's nominal grid: its time x fps, rounded."""
        if frame.pts is None:
            return None
        return int(round(float((frame.pts - self._start) * self.stream.time_base) * self.meta.fps))

    def _to_array(self, frame) -> np.ndarray:
        if frame.rotation:
            self.meta.rotation = frame.rotation
        return frame_to_array(frame)

    def _restart(self) -> None:
        try:
            self.container.seek(0, stream=self.stream)
        except self._av.FFmpegError:
            if self._decoded_once:  # cannot go back: a second read would start mid-stream
                raise
        self._decoded_once = True

    def _decode_run(self, run: Sequence[int], out: dict, *, seek: bool, by_count: bool) -> Tuple[int, int]:
        """Decode the frames shown at the slots of ``run`` (sorted) into ``out``; with ``seek``,
        from the keyframe before the first, else from the start. A slot shows the last frame
        whose slot is at most it (a slot in a gap shows the frame before the gap); slots past
        the stream's end show its last frame if they lie within the largest step between frames
        seen (or `TAIL_TOLERANCE`). Returns (the last slot decoded, that step); -1 if none."""
        s = self.stream
        if seek:
            target = self._start + int(run[0] / self.meta.fps / s.time_base)
            self.container.seek(max(target, self._start), stream=s, backward=True, any_frame=False)
            self._decoded_once = True
        else:
            self._restart()
        pending = collections.deque(run)
        last_slot, last_frame, step = -1, None, 1
        converted: list = [None, None]  # (frame, array) of the last conversion: held frames convert once

        def array(frame):
            if converted[0] is not frame:
                converted[:] = [frame, self._to_array(frame)]
            return converted[1]

        ended = True
        for k, frame in enumerate(self.container.decode(s)):
            slot = k if by_count else self._slot_of(frame)
            if slot is None:
                raise _NoTimestamps()
            if last_frame is None and slot > pending[0]:
                if seek:  # the seek landed after a wanted slot: decode from the start instead
                    raise _SeekMissed()
                while pending and pending[0] < slot:  # before the first frame: what a player shows, the first
                    out[pending.popleft()] = array(frame)
            while pending and pending[0] < slot:
                out[pending.popleft()] = array(last_frame)
            if last_frame is not None:
                step = max(step, slot - last_slot)
            last_slot, last_frame = slot, frame
            if slot > run[-1]:
                ended = False
                break
        if ended and last_frame is not None:
            while pending and pending[0] - last_slot <= max(step, TAIL_TOLERANCE):
                out[pending.popleft()] = array(last_frame)
        return last_slot, step

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 ``[len(indices), H, W, 3]`` for 0-based frame indices (slots of the module docstring)."""
        av = self._av
        idx = [int(i) for i in indices]
        if not idx:
            raise UsageError("get_frames needs at least one index")
        if min(idx) < 0 or max(idx) >= self.meta.num_frames:
            bad = min(idx) if min(idx) < 0 else max(idx)
            raise DecodeError(self.path, f"frame index {bad} out of range (video has {self.meta.num_frames} frames)")
        wanted = sorted(set(idx))
        out: dict = {}
        last_seen = -1
        try:
            try:
                if not self.meta.has_timestamps:
                    raise _NoTimestamps()
                try:
                    runs = [[wanted[0]]]
                    for i in wanted[1:]:
                        (runs[-1].append(i) if i - runs[-1][-1] <= self.seek_gap else runs.append([i]))
                    for run in runs:
                        last_seen = max(last_seen, self._decode_run(run, out, seek=True, by_count=False)[0])
                except _SeekMissed:
                    out.clear()
                    last_seen = self._decode_run(wanted, out, seek=False, by_count=False)[0]
            except _NoTimestamps:  # no usable timestamps: frames are counted from the start
                out.clear()
                last_seen = self._decode_run(wanted, out, seek=False, by_count=True)[0]
        except av.FFmpegError as e:
            raise DecodeError(self.path, f"decoding failed ({type(e).__name__}: {e})") from None
        if not out and last_seen < 0:
            raise DecodeError(self.path, f"no decodable frames (container says {self.meta.num_frames})")
        for i in wanted:
            if i not in out:
                raise DecodeError(self.path, f"truncated or corrupt: frame {i} not decodable (last "
                                  f"decoded frame {last_seen}, container says {self.meta.num_frames} frames)")
        return np.stack([out[i] for i in idx])

    def read_all(self) -> np.ndarray:
        """Every frame, decoded sequentially (the slow reference path, e.g. for benchmarks)."""
        av = self._av
        try:
            self._restart()
            frames = [self._to_array(f) for f in self.container.decode(self.stream)]
        except av.FFmpegError as e:
            raise DecodeError(self.path, f"decoding failed ({type(e).__name__}: {e})") from None
        if not frames:
            raise DecodeError(self.path, "no decodable frames")
        return np.stack(frames)

    def close(self):
        self.container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def frame_to_array(frame) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]`` of a decoded PyAV frame, turned upright by its display matrix."""
    img = frame.to_ndarray(format="rgb24")
    rot = frame.rotation  # display matrix: degrees counter-clockwise, as np.rot90 turns
    if rot:
        img = np.ascontiguousarray(np.rot90(img, k=int(round(rot / 90)) % 4))
    return img


class _NoTimestamps(Exception):
    pass


class _SeekMissed(Exception):
    pass


class FrameFolderDecoder:
    """A folder of images named by ``template`` (``img_{:05d}.jpg``), first frame ``start_index``.

    ``num_frames``: the count from a list file; when None the folder is scanned.
    """

    def __init__(self, path: str, template: str = "img_{:05d}.jpg", start_index: int = 1,
                 num_frames: Optional[int] = None):
        self.path, self.template, self.start_index = str(path), template, start_index
        if not os.path.isdir(self.path):
            raise DecodeError(self.path, "frame folder not found")
        if num_frames is None:
            num_frames = count_frames(self.path, template, start_index)
        if num_frames <= 0:
            raise DecodeError(self.path, f"empty frame folder (no files matching {template!r})")
        first = os.path.join(self.path, template.format(start_index))
        w = h = 0
        try:
            from PIL import Image
            with Image.open(first) as im:
                w, h = im.size
        except (OSError, ValueError) as e:
            raise DecodeError(first, f"cannot read image ({e})") from None
        self.meta = VideoMeta(num_frames=num_frames, fps=None, duration=None, width=w, height=h,
                              has_timestamps=False, codec="images")

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        from PIL import Image
        cache: dict = {}
        frames = []
        for i in indices:
            i = int(i)
            if i not in cache:
                if i < 0 or i >= self.meta.num_frames:
                    raise DecodeError(self.path, f"frame index {i} out of range (folder has "
                                      f"{self.meta.num_frames} frames)")
                f = os.path.join(self.path, self.template.format(i + self.start_index))
                try:
                    with Image.open(f) as im:
                        cache[i] = np.asarray(im.convert("RGB"))
                except (OSError, ValueError) as e:
                    raise DecodeError(f, f"cannot read frame {i} ({e})") from None
            frames.append(cache[i])
        shapes = {a.shape for a in frames}
        if len(shapes) > 1:
            raise DecodeError(self.path, f"frames differ in size: {sorted(shapes)}")
        return np.stack(frames)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def count_frames(folder: str, template: str = "img_{:05d}.jpg", start_index: int = 1) -> int:
    """Number of consecutive frames ``start_index, start_index+1, ...`` present in ``folder``."""
    names = set(os.listdir(folder))
    n = 0
    while template.format(start_index + n) in names:
        n += 1
    return n


def open_decoder(path: str, *, frames_template: str = "img_{:05d}.jpg", start_index: int = 1,
                 num_frames: Optional[int] = None, threads: int = 0):
    """A :class:`FrameFolderDecoder` for a directory, else a :class:`PyAVDecoder`."""
    if os.path.isdir(path):
        return FrameFolderDecoder(path, frames_template, start_index, num_frames)
    return PyAVDecoder(path, threads=threads)
