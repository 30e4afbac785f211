"""The dataset class over a list of `Record`s, the corrupt-item policy, and collation.

:func:`build_dataset` reads a spec (the formats: :mod:`zoo.data.lists`) into a
:class:`VideoDataset` that decodes, samples and transforms each item by a model's info.

Corrupt items (``on_error``): ``"error"`` raises :class:`DataError` naming the file and the
reason; ``"skip"`` returns the item with ``video=None`` and an ``"error"`` reason, which
:func:`collate` passes on under ``"errors"``. No other video is ever substituted.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .._errors import BadData, UsageError
from .decoders import DecodeError, FrameFolderDecoder, PyAVDecoder
from .labels import label_map_hash
from .lists import Record, resolve_spec
from .samplers import build_sampler
from .transforms import ClipTransform, to_clip_tensor

__all__ = ["DataError", "VideoDataset", "build_dataset", "collate", "MIN_FRAMES", "too_short"]

ON_ERROR = ("error", "skip")
MIN_FRAMES = 3  # fewer is a still image or a broken cut, not a clip: reported like an unreadable video


def too_short(n: int) -> Optional[str]:
    """Why a video of ``n`` frames gives no clip (fewer than `MIN_FRAMES`), or None: the one rule
    of predict, eval, train, ``--timeline`` and ``zoo stream``."""
    if n >= MIN_FRAMES:
        return None
    return f"too short: {n} frame{'' if n == 1 else 's'}, a clip needs at least {MIN_FRAMES}"


class DataError(BadData, RuntimeError):
    """An item that cannot be used: ``path``, ``reason`` and ``index`` are attributes."""

    def __init__(self, path: str, reason: str, index: Optional[int] = None):
        self.path, self.reason, self.index = path, reason, index
        where = f"item {index}: " if index is not None else ""
        super().__init__(f"{where}{path}: {reason}. Fix or remove it (`zoo check-data` lists every problem), "
                         f"or use on_error='skip' to record it and continue")


class VideoDataset(torch.utils.data.Dataset):
    """Sampled, transformed clips of a list of videos, as the model's ``info`` asks for.

    Item ``i``: ``{"video": float [V, 3, T, H, W], "label": int, "index": i, "path": str}`` with
    ``V = clips * crops`` views (clip-major, then crop); training gives one view. Under
    ``on_error="skip"`` a failed item is ``{"video": None, ..., "error": reason}``.

    List entries whose label could not be resolved (not in the label map, a malformed row) fail like
    corrupt items under ``on_error="skip"`` or ``bad_labels="keep"``, named with their row; otherwise
    the constructor raises, naming them. A video of fewer than `MIN_FRAMES` frames fails like a corrupt one.

    Randomness (training) comes from torch's generator (one draw per item), so
    ``torch.manual_seed`` and DataLoader worker seeding make it reproducible.
    """

    def __init__(self, records: Sequence[Record], class_names: Sequence[str], info, *, train: bool = False,
                 views: Optional[Tuple[int, int]] = None, on_error: str = "error", flip: bool = True,
                 flip_map: Optional[Dict[str, str]] = None, frames_template: str = "img_{:05d}.jpg",
                 frames_start_index: int = 1, decoder_threads: int = 1, short: str = "clamp",
                 starts: str = "uniform", bad_labels: str = "error"):
        if on_error not in ON_ERROR:
            raise UsageError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        if bad_labels not in ("error", "keep"):
            raise UsageError(f"bad_labels must be 'error' or 'keep', got {bad_labels!r}")
        self.records, self.class_names, self.info = list(records), list(class_names), info
        self.train, self.on_error = train, on_error
        if train:
            if views not in (None, (1, 1)):
                raise UsageError(f"training yields one view per item, got views={views}")
            views = (1, 1)
        self.views = tuple(views) if views is not None else tuple(info.test_views)
        bad = [r for r in self.records if r.problem]
        if bad and bad_labels == "error" and on_error == "error":
            shown = "; ".join(r.problem for r in bad[:3])
            raise BadData(f"{len(bad)} list entr{'y' if len(bad) == 1 else 'ies'} cannot be used ({shown}"
                             f"{'; ...' if len(bad) > 3 else ''}); run `zoo check-data` to list them all, or skip "
                             f"them (--on-error skip, on_error='skip')")
        index = {n: i for i, n in enumerate(self.class_names)}
        self.flip_map = {index[a]: index[b] for a, b in (flip_map or {}).items() if a in index and b in index}
        self.frames_template, self.frames_start_index = frames_template, frames_start_index
        self.decoder_threads = decoder_threads
        self.sampler = build_sampler(info, train=train, num_clips=self.views[0], short=short, starts=starts)
        self.transform = ClipTransform(info, train=train, crops=self.views[1], flip=flip, flip_map=self.flip_map)

    # -- properties -------------------------------------------------------------------------
    @property
    def label_map_hash(self) -> str:
        return label_map_hash(self.class_names)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def labels(self) -> List[Optional[int]]:
        return [r.label for r in self.records]

    @property
    def num_views(self) -> int:
        return self.views[0] * self.views[1]

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self):
        return (f"VideoDataset({len(self)} items, {self.num_classes} classes, train={self.train}, "
                f"views={self.views[0]}x{self.views[1]}, on_error={self.on_error!r}, {self.sampler!r})")

    # -- loading ----------------------------------------------------------------------------
    def open(self, rec: Record):
        """The decoder for one record (frame folder or video file)."""
        if os.path.isdir(rec.path):
            return FrameFolderDecoder(rec.path, self.frames_template, self.frames_start_index, rec.num_frames)
        return PyAVDecoder(rec.path, threads=self.decoder_threads)

    def frame_range(self, rec: Record, meta) -> Tuple[int, int]:
        """First frame and frame count of the part of the video the record uses."""
        n = meta.num_frames
        if rec.start is None:
            return 0, n
        if not meta.fps:
            raise DecodeError(rec.path, "start/end given but the video has no frame rate")
        first = min(n, max(0, int(round(rec.start * meta.fps))))
        last = min(n, int(round(rec.end * meta.fps)))
        return first, last - first

    def load(self, i: int, rng: Optional[np.random.Generator] = None) -> Tuple[torch.Tensor, int]:
        """Decode, sample and transform item ``i``: ``([V, 3, T, H, W], label)``; raises on failure."""
        rec = self.records[i]
        if rec.problem:
            raise DataError(rec.path, rec.problem, i)
        with self.open(rec) as dec:
            first, n = self.frame_range(rec, dec.meta)
            if n <= 0:
                raise DecodeError(rec.path, "no frames" + (f" between {rec.start}s and {rec.end}s"
                                                            if rec.start is not None else ""))
            if too_short(n):
                raise DecodeError(rec.path, too_short(n))
            clips = self.sampler(n, rng)
            wanted = np.unique(np.concatenate(clips))
            frames = dec.get_frames((wanted + first).tolist())
        pos = {int(f): k for k, f in enumerate(wanted)}
        views, label = [], rec.label
        for idx in clips:
            clip = to_clip_tensor(frames[[pos[int(j)] for j in idx]])
            out, label = self.transform(clip, rec.label, rng)
            views.extend(out)
        return torch.stack(views), label

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self.records):
            raise IndexError(f"index {i} out of range for {len(self.records)} items")
        rec = self.records[i]
        rng = np.random.default_rng(int(torch.randint(0, 2 ** 62, (1,)).item())) if self.train else None
        try:
            video, label = self.load(i, rng)
        except (DecodeError, DataError) as e:
            if self.on_error == "error":
                if isinstance(e, DataError):
                    raise
                raise DataError(e.path, e.reason, i) from None
            return {"video": None, "label": rec.label, "index": i, "path": rec.path, "error": e.reason}
        return {"video": video, "label": label, "index": i, "path": rec.path}


def collate(batch: Sequence[dict]) -> dict:
    """Stack the good items; failed ones (``video is None``) go to ``"errors"`` (never dropped silently).

    Returns ``{"video": [B, V, 3, T, H, W] or None, "label": [B], "index": [B], "path": [B],
    "errors": [{"index", "path", "label", "error"}, ...]}``.
    """
    good = [b for b in batch if b.get("video") is not None]
    errors = [{"index": b["index"], "path": b["path"], "label": b["label"], "error": b.get("error", "unknown")}
              for b in batch if b.get("video") is None]
    return {
        "video": torch.stack([b["video"] for b in good]) if good else None,
        "label": torch.tensor([b["label"] for b in good], dtype=torch.long),
        "index": torch.tensor([b["index"] for b in good], dtype=torch.long),
        "path": [b["path"] for b in good],
        "errors": errors,
    }



# -- build_dataset -------------------------------------------------------------------------
def build_dataset(spec, info, split: str = "val", *, train: bool = False, views: Optional[Tuple[int, int]] = None,
                  on_error: str = "error", root: Optional[str] = None, label_map: Optional[str] = None,
                  flip: Optional[bool] = None, frames_template: Optional[str] = None, frame_folders: bool = False,
                  bad_labels: str = "error", fold: Optional[int] = None, **kwargs) -> VideoDataset:
    """A :class:`VideoDataset` for ``spec`` (see the module docstring for formats) and a model's info.

    ``views=(clips, crops)`` defaults to ``info.test_views`` (1 view in training).
    ``flip``: horizontal flips in training (default: on, except SSv2 like TSM/PAN; flips swap
    labels by the SynthMotion flip map). ``frame_folders=True`` reads a SynthMotion directory's frame
    folders instead of its videos. ``fold``: the official split of a UCF101 / HMDB51 root (``train``
    reads its train list, other splits its test list). Other keywords go to :class:`VideoDataset`.
    """
    recs, names, extras = resolve_spec(spec, split, root=root, label_map=label_map,
                                       frame_folders=frame_folders, fold=fold)
    if not recs:
        raise BadData(f"{spec}: the list has no entries")
    return VideoDataset(recs, names, info, train=train, views=views, on_error=on_error,
                        flip=extras["flip"] if flip is None else flip, flip_map=extras.get("flip_map"),
                        frames_template=frames_template or extras.get("frames_template", "img_{:05d}.jpg"),
                        bad_labels=bad_labels, **kwargs)
