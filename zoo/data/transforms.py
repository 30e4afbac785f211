"""Spatial transforms of whole clips, driven by a model's info (torchvision.transforms.v2 ops).

A clip is a uint8 tensor ``[T, 3, H, W]``; one set of random parameters is drawn per clip and
applied to every frame, so all frames get the same crop and flip. Outputs are float
``[3, T, crop, crop]`` normalised with ``info.mean``/``info.std`` after scaling to [0, 1]
(with I3D's mean = std = 0.5 that is [-1, 1]).

- Train, ``info.sampling == "segment"``: short side to ``info.resize_size``, then TSN's
  multi-scale crop (``GroupMultiScaleCrop``): side ``int(short * s)`` for ``s`` in
  ``info.train_scales`` (within 3 px of the crop size snaps to it), width and height scales
  at most one step apart, offset from a fixed 13-position grid, resized to ``crop_size``.
- Train, ``"dense"``: short side to a random integer in ``info.train_jitter`` (inclusive),
  random ``crop_size`` crop (PySlowFast).
- Both: horizontal flip with p = 0.5 when ``flip``; a ``flip_map`` {label: label} swaps the
  label of flipped clips (left/right classes).
- Test: short side to ``info.resize_size``; 1 crop = centre, 3 crops = start/centre/end square
  crops along the long side (PySlowFast ``uniform_crop``; TSM ``GroupFullResSample`` order).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

from .._errors import UsageError

__all__ = ["multiscale_crop_params", "fixed_offsets", "ClipTransform", "to_clip_tensor"]


def to_clip_tensor(frames) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` (numpy or torch) -> uint8 ``[T, 3, H, W]``."""
    t = torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    if t.ndim != 4 or t.shape[-1] != 3:
        raise UsageError(f"expected frames [T, H, W, 3], got {tuple(t.shape)}")
    return t.permute(0, 3, 1, 2).contiguous()


def fixed_offsets(image_w: int, image_h: int, crop_w: int, crop_h: int) -> List[Tuple[int, int]]:
    """The 13 (x, y) crop offsets of TSN's ``more_fix_crop`` grid (corners, centre, edges, quarters)."""
    ws, hs = (image_w - crop_w) // 4, (image_h - crop_h) // 4
    grid = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2),  # corners and centre
            (0, 2), (4, 2), (2, 4), (2, 0),  # edge midpoints
            (1, 1), (3, 1), (1, 3), (3, 3)]  # quarter points
    return [(i * ws, j * hs) for i, j in grid]


def multiscale_crop_params(image_w: int, image_h: int, crop_size: int, scales, rng: np.random.Generator,
                           max_distort: int = 1) -> Tuple[int, int, int, int]:
    """(left, top, width, height) of one TSN multi-scale crop."""
    base = min(image_w, image_h)
    sizes = [int(base * s) for s in scales]
    sizes = [crop_size if abs(s - crop_size) < 3 else s for s in sizes]
    pairs = [(w, h) for i, h in enumerate(sizes) for j, w in enumerate(sizes) if abs(i - j) <= max_distort]
    w, h = pairs[rng.integers(len(pairs))]
    offsets = fixed_offsets(image_w, image_h, w, h)
    x, y = offsets[rng.integers(len(offsets))]
    return x, y, w, h


class ClipTransform:
    """Turn one sampled clip into normalised views; see the module docstring.

    ``crops``: spatial test views (1 or 3); ignored in training (always 1).
    """

    def __init__(self, info, *, train: bool = False, crops: int = 1, flip: bool = True,
                 flip_map: Optional[Dict[int, int]] = None):
        if not train and crops not in (1, 3):
            raise UsageError(f"test crops must be 1 or 3, got {crops}")
        self.info, self.train, self.crops = info, train, 1 if train else crops
        self.flip, self.flip_map = flip, dict(flip_map or {})
        self.mean, self.std = list(info.mean), list(info.std)

    def _normalise(self, clip: torch.Tensor) -> torch.Tensor:
        x = F.normalize(F.to_dtype(clip, torch.float32, scale=True), self.mean, self.std)
        return x.permute(1, 0, 2, 3).contiguous()  # [3, T, H, W]

    def _train(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        info, size = self.info, self.info.crop_size
        if info.sampling == "segment":
            clip = F.resize(clip, [info.resize_size], antialias=True)
            h, w = clip.shape[-2:]
            x, y, cw, ch = multiscale_crop_params(w, h, size, info.train_scales, rng)
            return F.resized_crop(clip, y, x, ch, cw, [size, size], antialias=True)
        lo, hi = info.train_jitter
        clip = F.resize(clip, [int(rng.integers(lo, hi + 1))], antialias=True)
        h, w = clip.shape[-2:]
        if h < size or w < size:
            raise UsageError(f"train_jitter {info.train_jitter} gives frames smaller than crop_size {size}")
        y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        return F.crop(clip, y, x, size, size)

    def _test(self, clip: torch.Tensor) -> List[torch.Tensor]:
        size = self.info.crop_size
        clip = F.resize(clip, [self.info.resize_size], antialias=True)
        h, w = clip.shape[-2:]
        if self.crops == 1:
            return [F.center_crop(clip, [size, size])]
        if w >= h:  # crops along the long side: start, centre, end
            ys = [(h - size) // 2] * 3
            xs = [0, (w - size) // 2, w - size]
        else:
            xs = [(w - size) // 2] * 3
            ys = [0, (h - size) // 2, h - size]
        return [F.crop(clip, y, x, size, size) for x, y in zip(xs, ys)]

    def __call__(self, clip: torch.Tensor, label: int, rng: Optional[np.random.Generator] = None
                 ) -> Tuple[List[torch.Tensor], int]:
        """uint8 ``[T, 3, H, W]`` -> (list of ``[3, T, crop, crop]`` float views, label)."""
        if self.train:
            rng = rng if rng is not None else np.random.default_rng()
            out = self._train(clip, rng)
            if self.flip and rng.random() < 0.5:
                out = F.horizontal_flip(out)
                label = self.flip_map.get(label, label)
            return [self._normalise(out)], label
        return [self._normalise(c) for c in self._test(clip)], label

    def __repr__(self):
        return (f"ClipTransform(train={self.train}, crops={self.crops}, crop={self.info.crop_size}, "
                f"resize={self.info.resize_size}, flip={self.flip}, flip_map={len(self.flip_map)} swaps)")
