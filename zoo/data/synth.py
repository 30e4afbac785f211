"""SynthMotion: a procedurally generated benchmark where only motion over time decides the class.

Every class but none of the appearance is temporal: shape (ellipse, rectangle, triangle, L,
half-disc), colours, texture (solid, stripes, checker), size, speed, start position, background,
1-3 drifting distractor objects, per-frame camera jitter and pixel noise are drawn at random,
independently of the class.

Classes come in time-reversed twin pairs: the second class of a pair is *rendered* as the first
one and then played backwards (with its own random draw). The set of frames of a clip therefore
has exactly the same distribution in both classes of a pair, so any frame-order-invariant model
(e.g. TSN with average consensus) is at chance between twins by construction, while a model that
sees temporal order can separate them.

A small 3D CNN trained from scratch learns the standard set, and separates twins; the same network
with 1-frame kernels and average consensus (TSN-style, frame-order invariant) stays near chance
(``zoo compare`` measures every registered model's bench network on it:
``benchmarks/results/compare.json``).

``difficulty="easy"`` keeps the classes and the twin construction (the class is decided only by
motion, appearance is random and independent of the class) but removes what makes the standard
set hard to learn from scratch: no distractors, no camera jitter, almost no pixel noise, a flat
background, a larger solid object whose colour is far from the background's, larger motion.
A small ResNet-18 TSM trained from scratch for a few epochs learns it, and a frame-order-invariant
TSN tells the motion axes apart but stays at chance between twins (``zoo demo`` measures both; the
README gives its figures).

Output of :func:`generate` (paths relative to ``out``)::

    classes.json     classes, twin pairs, horizontal-flip label-swap map, label-map hash, settings
                     (difficulty, clips per class, frames, size, seed, codec)
    labels.txt       the label map: one class name per line, line i = label i
    train.csv, val.csv   Kinetics-style ``path,label`` (label = class name)
    videos/<class>/<class>_<k>.mp4   H.264 (libx264, yuv420p); lossless=True: libx264rgb qp 0 .mkv
    frames/<class>/<class>_<k>/img_00001.jpg ... (frame_folders=True; .png when lossless)
    train_list.txt, val_list.txt   TSN lists ``frames/<class>/<id> num_frames label`` (frame_folders)
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from .._errors import UsageError
from .labels import label_map_hash, save_label_map

__all__ = ["CLASSES", "TWINS", "FLIP_MAP", "DIFFICULTIES", "SynthOutput", "generate", "generate_or_reuse",
           "render_clip", "label_map_hash"]

# (forward class, its time reversal)
TWINS: Tuple[Tuple[str, str], ...] = (
    ("moving_right", "moving_left"),
    ("moving_down", "moving_up"),
    ("rotating_clockwise", "rotating_counterclockwise"),
    ("growing", "shrinking"),
    ("appearing", "disappearing"),
    ("moving_then_stopping", "starting_to_move"),
    ("approaching", "separating"),
)
CLASSES: Tuple[str, ...] = tuple(c for pair in TWINS for c in pair)
# A horizontal flip turns these classes into each other; every other class maps to itself.
FLIP_MAP: Dict[str, str] = {"moving_right": "moving_left", "moving_left": "moving_right",
                            "rotating_clockwise": "rotating_counterclockwise",
                            "rotating_counterclockwise": "rotating_clockwise"}
_FORWARD = {b: a for a, b in TWINS}  # reversed class -> the class it is rendered from
SHAPES = ("ellipse", "rectangle", "triangle", "L", "half_disc")
TEXTURES = ("solid", "stripes", "checker")
VERSION = 1
# "standard": the benchmark described above. "easy": the same classes and twin construction (the
# class is still decided only by motion; appearance is random and independent of the class), but
# no distractors, no camera jitter, almost no pixel noise, a flat background, larger solid objects
# in a colour far from the background's, and larger motion per frame -- learnable from scratch by
# a small temporal 2D CNN in about a CPU minute (see zoo demo).
DIFFICULTIES = ("standard", "easy")


# -- rendering ---------------------------------------------------------------------------------
def _shape_field(shape: str, u: np.ndarray, v: np.ndarray, aspect: float) -> np.ndarray:
    """Implicit shape in object coordinates: < 1 inside, roughly distance-scaled at the edge."""
    if shape == "ellipse":
        return np.hypot(u, v / aspect)
    if shape == "rectangle":
        return np.maximum(np.abs(u), np.abs(v) / aspect)
    if shape == "triangle":
        f = None
        for a in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3):
            g = (u * np.cos(a) + v * np.sin(a)) * 2.0
            f = g if f is None else np.maximum(f, g)
        return f
    if shape == "L":
        bar1 = np.maximum(np.abs(u), np.abs(v + 0.65) / 0.35)
        bar2 = np.maximum(np.abs(u + 0.65) / 0.35, np.abs(v))
        return np.minimum(bar1, bar2)
    if shape == "half_disc":
        vv = v + 0.4
        return np.maximum(np.hypot(u, vv), 1.0 - vv)
    raise ValueError(shape)


def _random_object(rng, size: int, scale_range=(0.12, 0.22), bg_level: Optional[float] = None) -> dict:
    if bg_level is None:
        c1 = rng.uniform(0, 255, 3)
        c2 = rng.uniform(0, 255, 3)
    else:  # easy: a solid object whose every channel is far from the (flat) background's level
        c1 = rng.uniform(190, 255, 3) if bg_level < 128 else rng.uniform(0, 65, 3)
        c2 = c1
    return dict(shape=SHAPES[rng.integers(len(SHAPES))],
                texture=TEXTURES[rng.integers(len(TEXTURES))] if bg_level is None else "solid", c1=c1, c2=c2,
                radius=rng.uniform(*scale_range) * size, aspect=rng.uniform(0.45, 0.75),
                freq=rng.uniform(2.0, 4.0), phi0=rng.uniform(0, 2 * np.pi))


def _draw(canvas: np.ndarray, obj: dict, cx: float, cy: float, phi: float, scale: float, vis: float):
    if vis <= 0:
        return
    h, w, _ = canvas.shape
    r = obj["radius"] * scale
    ext = r * 1.5 + 2
    x0, x1 = max(0, int(cx - ext)), min(w, int(cx + ext) + 1)
    y0, y1 = max(0, int(cy - ext)), min(h, int(cy + ext) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xx + 0.5 - cx, yy + 0.5 - cy
    c, s = np.cos(phi), np.sin(phi)
    u = (c * dx + s * dy) / r
    v = (-s * dx + c * dy) / r
    f = _shape_field(obj["shape"], u, v, obj["aspect"])
    alpha = np.clip((1.0 - f) * r + 0.5, 0.0, 1.0)[..., None] * vis
    if obj["texture"] == "solid":
        col = obj["c1"]
    else:
        k = obj["freq"] * np.pi
        m = np.sin(u * k) > 0 if obj["texture"] == "stripes" else np.sin(u * k) * np.sin(v * k) > 0
        col = np.where(m[..., None], obj["c1"], obj["c2"])
    patch = canvas[y0:y1, x0:x1]
    patch *= 1.0 - alpha
    patch += alpha * col


def _background(rng, n: int) -> np.ndarray:
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / max(n - 1, 1)
    t = ((np.cos(ang) * (xx - 0.5) + np.sin(ang) * (yy - 0.5)) + 0.5)[..., None]
    bg = a * (1 - t) + b * t
    g = int(rng.integers(3, 7))
    coarse = rng.normal(0, rng.uniform(5, 25), (g, g, 3)).astype(np.float32)
    idx = np.linspace(0, g - 1, n)
    i0 = np.floor(idx).astype(int).clip(0, g - 2)
    fr = (idx - i0)[:, None]
    rows = coarse[i0] * (1 - fr[..., None]) + coarse[i0 + 1] * fr[..., None]  # [n, g, 3]
    cols = rows[:, i0] * (1 - fr[None]) + rows[:, i0 + 1] * fr[None]
    return (bg + cols).astype(np.float32)


def _point_pair(rng, size, margin, direction, dist):
    """Two endpoints ``dist`` apart along ``direction``, both at least ``margin`` inside the frame."""
    dx, dy = np.cos(direction) * dist, np.sin(direction) * dist
    mx = rng.uniform(margin + abs(dx) / 2, max(margin + abs(dx) / 2, size - margin - abs(dx) / 2))
    my = rng.uniform(margin + abs(dy) / 2, max(margin + abs(dy) / 2, size - margin - abs(dy) / 2))
    return (mx - dx / 2, my - dy / 2), (mx + dx / 2, my + dy / 2)


def _forward_tracks(cls: str, rng, size: int, frames: int, target: dict, easy: bool = False) -> List[dict]:
    """Per-frame (cx, cy, phi, scale, vis) arrays of the class-defining object(s).

    ``easy``: larger displacements, turns and size changes (the standard draws are unchanged)."""
    T = frames
    t = np.linspace(0.0, 1.0, T)
    ones = np.ones(T)
    margin = target["radius"] * 1.1
    center = lambda: (rng.uniform(margin, size - margin), rng.uniform(margin, size - margin))  # noqa: E731
    phi = np.full(T, target["phi0"])
    # A little rotation wobble everywhere so that "rotating" is not the only class with turning.
    wobble = rng.uniform(-0.15, 0.15) * np.sin(2 * np.pi * (t * rng.uniform(0.5, 1.5) + rng.uniform()))
    track = dict(cx=None, cy=None, phi=phi + wobble, scale=ones.copy(), vis=ones.copy())
    if cls in ("moving_right", "moving_down"):
        axis = 0.0 if cls == "moving_right" else np.pi / 2
        d = rng.uniform(*((0.5, 0.75) if easy else (0.3, 0.6))) * size
        (x0, y0), (x1, y1) = _point_pair(rng, size, margin, axis + rng.uniform(-0.35, 0.35), d)
        track.update(cx=x0 + (x1 - x0) * t, cy=y0 + (y1 - y0) * t)
    elif cls == "rotating_clockwise":
        # radians over the clip, < 40 degrees per frame for T >= 8
        total = rng.uniform(*((1.0, 1.5) if easy else (0.5, 1.5))) * np.pi
        cx, cy = center()
        track.update(cx=cx * ones, cy=cy * ones, phi=target["phi0"] + total * t)
    elif cls == "growing":
        s0 = rng.uniform(0.45, 0.65)
        s1 = s0 * rng.uniform(*((2.0, 2.4) if easy else (1.6, 2.2)))
        m = target["radius"] * s1 * 1.1
        cx, cy = rng.uniform(m, size - m), rng.uniform(m, size - m)
        track.update(cx=cx * ones, cy=cy * ones, scale=s0 + (s1 - s0) * t)
    elif cls == "appearing":
        t0 = int(rng.integers(T // 4, max(T // 4 + 1, (3 * T) // 4)))
        vis = np.clip((np.arange(T) - t0 + 1) / 2.0, 0.0, 1.0)
        cx, cy = center()
        track.update(cx=cx * ones, cy=cy * ones, vis=vis)
    elif cls == "moving_then_stopping":
        stop = rng.uniform(0.35, 0.65)
        d = rng.uniform(*((0.45, 0.65) if easy else (0.25, 0.5))) * size
        (x0, y0), (x1, y1) = _point_pair(rng, size, margin, rng.uniform(0, 2 * np.pi), d)
        p = np.clip(t / stop, 0.0, 1.0)
        track.update(cx=x0 + (x1 - x0) * p, cy=y0 + (y1 - y0) * p)
    elif cls == "approaching":
        partner = _random_object(rng, size, *((target["scale_range"], target["bg_level"]) if easy else ()))
        m2 = max(margin, partner["radius"] * 1.1)
        d0 = rng.uniform(0.55, 0.75) * size
        d1 = rng.uniform(0.35, 0.5) * (target["radius"] + partner["radius"]) * 2
        if easy:  # large objects in a small frame: keep the approach large
            d1 = min(d1, 0.6 * d0)
        ang = rng.uniform(0, 2 * np.pi)
        (ax, ay), (bx, by) = _point_pair(rng, size, m2, ang, d0)
        mx, my = (ax + bx) / 2, (ay + by) / 2
        ux, uy = np.cos(ang), np.sin(ang)
        half = (d0 + (d1 - d0) * t) / 2
        track.update(cx=mx - ux * half, cy=my - uy * half)
        other = dict(obj=partner, cx=mx + ux * half, cy=my + uy * half,
                     phi=np.full(T, partner["phi0"]), scale=ones.copy(), vis=ones.copy())
        return [dict(obj=target, **track), other]
    else:
        raise UsageError(f"unknown SynthMotion class {cls!r}")
    return [dict(obj=target, **track)]


def _flat_background(rng, n: int):
    """easy: one flat colour, dark or bright at random (independently of the class)."""
    level = float(rng.uniform(0, 60) if rng.random() < 0.5 else rng.uniform(195, 255))
    colour = np.clip(level + rng.uniform(-15, 15, 3), 0, 255)
    return np.broadcast_to(colour.astype(np.float32), (n, n, 3)).copy(), level


def render_clip(cls: str, rng: np.random.Generator, size: int = 64, frames: int = 16,
                difficulty: str = "standard") -> np.ndarray:
    """One clip of class ``cls`` as uint8 ``[frames, size, size, 3]`` (deterministic given rng)."""
    if cls not in CLASSES:
        raise UsageError(f"unknown SynthMotion class {cls!r}; classes: {', '.join(CLASSES)}")
    if difficulty not in DIFFICULTIES:
        raise UsageError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, got {difficulty!r}")
    forward = _FORWARD.get(cls, cls)
    if difficulty == "easy":
        bg, level = _flat_background(rng, size)
        target = _random_object(rng, size, (0.2, 0.28), bg_level=level)
        target.update(scale_range=(0.2, 0.28), bg_level=level)
        layers = _forward_tracks(forward, rng, size, frames, target, easy=True)
        jit, shifts, distractors = 0, np.zeros((frames, 2), int), []
        noise = rng.normal(0, 2.0, (frames, size, size, 3)).astype(np.float32)
        order = np.arange(len(layers))
    else:
        jit = max(1, size // 32)
        n = size + 2 * jit
        bg = _background(rng, n)
        target = _random_object(rng, size)
        tracks = _forward_tracks(forward, rng, size, frames, target)
        distractors = []
        for _ in range(int(rng.integers(1, 4))):
            obj = _random_object(rng, size, (0.08, 0.16))
            x, y = rng.uniform(0, size, 2)
            drift = rng.normal(0, 0.05 * size, 2)
            t = np.linspace(-0.5, 0.5, frames)
            distractors.append(dict(obj=obj, cx=x + drift[0] * t, cy=y + drift[1] * t,
                                    phi=obj["phi0"] + rng.uniform(-0.3, 0.3) * t,
                                    scale=np.ones(frames), vis=np.ones(frames)))
        shifts = rng.integers(-jit, jit + 1, (frames, 2))
        noise_sd = rng.uniform(2.0, 8.0)
        noise = rng.normal(0, noise_sd, (frames, size, size, 3)).astype(np.float32)
        layers = distractors + tracks
        order = rng.permutation(len(layers))  # the target is not always on top
    out = np.empty((frames, size, size, 3), np.uint8)
    for i in range(frames):
        canvas = bg.copy()
        for j in order:
            L = layers[j]
            _draw(canvas, L["obj"], L["cx"][i] + jit, L["cy"][i] + jit, L["phi"][i], L["scale"][i], L["vis"][i])
        ox, oy = jit + shifts[i, 0], jit + shifts[i, 1]
        frame = canvas[oy:oy + size, ox:ox + size] + noise[i]
        out[i] = np.clip(frame, 0, 255).astype(np.uint8)
    if cls != forward:
        out = out[::-1].copy()
    return out


# -- writing -----------------------------------------------------------------------------------
def write_video(path: str, frames, fps: int = 15, lossless: bool = False) -> None:
    """Encode uint8 RGB frames (``[T, H, W, 3]``, or any iterable of ``[H, W, 3]``, encoded as they
    come): H.264 yuv420p (crf 18), or libx264rgb qp 0 when lossless."""
    import itertools

    import av
    frames = iter(frames)
    first = next(frames)
    h, w = first.shape[:2]
    with av.open(path, "w") as container:
        if lossless:
            stream = container.add_stream("libx264rgb", rate=fps, options={"qp": "0", "preset": "veryfast", "threads": "1"})
            stream.pix_fmt = "rgb24"
        else:
            # x264's macroblock-tree lookahead gave run-to-run differences with the PyAV 18 wheel's
            # x264 (asm path); without it the output is reproducible.
            stream = container.add_stream("libx264", rate=fps, options={
                "crf": "18", "preset": "veryfast", "threads": "1", "x264-params": "rc-lookahead=0:mbtree=0"})
            stream.pix_fmt = "yuv420p"
        stream.width, stream.height = w, h
        for f in itertools.chain([first], frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_frames(folder: str, frames: np.ndarray, template: str = "img_{:05d}.jpg") -> None:
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    for i, f in enumerate(frames):
        name = os.path.join(folder, template.format(i + 1))
        Image.fromarray(f).save(name, quality=95) if name.endswith((".jpg", ".jpeg")) else Image.fromarray(f).save(name)


@dataclass
class SynthOutput:
    root: str
    classes: List[str]
    train_csv: str
    val_csv: str
    classes_json: str
    label_map: str
    videos: List[str] = field(default_factory=list)
    train_list: Optional[str] = None
    val_list: Optional[str] = None


def _parse_classes(classes) -> List[str]:
    if classes is None:
        return list(CLASSES)
    if isinstance(classes, int):
        if not 2 <= classes <= len(CLASSES):
            raise UsageError(f"classes must be between 2 and {len(CLASSES)}, got {classes}")
        return list(CLASSES[:classes])
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    unknown = [c for c in classes if c not in CLASSES]
    if unknown:
        raise UsageError(f"unknown SynthMotion class(es) {unknown}; available: {', '.join(CLASSES)}")
    if len(set(classes)) != len(classes) or len(classes) < 2:
        raise UsageError(f"classes must be at least 2 distinct names, got {classes}")
    return list(classes)


def generate(out: str, classes=None, per_class: int = 40, frames: int = 16, size: int = 64, seed: int = 0,
             frame_folders: bool = False, lossless: bool = False, val_fraction: float = 0.25,
             fps: int = 15, difficulty: str = "standard") -> SynthOutput:
    """Write a SynthMotion dataset under ``out`` (see the module docstring) and return its paths.

    ``classes``: None (all 14), a number (the first N), or names (list or comma-separated).
    ``per_class`` clips per class, of which ``round(per_class * val_fraction)`` go to val.
    Clip k of class c is drawn from ``np.random.default_rng([seed, CLASSES.index(c), k])``, so
    the output does not depend on which other classes are generated.
    ``difficulty``: "standard" (the benchmark) or "easy" (see ``DIFFICULTIES``); recorded in
    classes.json (``settings.difficulty``).
    """
    names = _parse_classes(classes)
    if size < 16 or size % 2:
        raise UsageError(f"size must be even and >= 16 (H.264 4:2:0 needs even sizes), got {size}")
    if frames < 4:
        raise UsageError(f"frames must be >= 4, got {frames}")
    if difficulty not in DIFFICULTIES:
        raise UsageError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, got {difficulty!r}")
    if per_class < 2 or not 0 < val_fraction < 1:
        raise UsageError(f"need per_class >= 2 and 0 < val_fraction < 1, got {per_class}, {val_fraction}")
    n_val = min(per_class - 1, max(1, int(round(per_class * val_fraction))))
    os.makedirs(out, exist_ok=True)
    ext = ".mkv" if lossless else ".mp4"
    tmpl = "img_{:05d}.png" if lossless else "img_{:05d}.jpg"
    rows = {"train": [], "val": []}
    videos = []
    for label, cls in enumerate(names):
        os.makedirs(os.path.join(out, "videos", cls), exist_ok=True)
        for k in range(per_class):
            rng = np.random.default_rng([seed, CLASSES.index(cls), k])
            clip = render_clip(cls, rng, size, frames, difficulty)
            vid = f"{cls}_{k:04d}"
            rel = f"videos/{cls}/{vid}{ext}"
            write_video(os.path.join(out, rel), clip, fps=fps, lossless=lossless)
            videos.append(os.path.join(out, rel))
            frel = None
            if frame_folders:
                frel = f"frames/{cls}/{vid}"
                write_frames(os.path.join(out, frel), clip, tmpl)
            rows["val" if k < n_val else "train"].append((rel, cls, frel, label))
    paths = {}
    for split, items in rows.items():
        paths[split] = os.path.join(out, f"{split}.csv")
        with open(paths[split], "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label"])
            w.writerows((rel, cls) for rel, cls, _, _ in items)
        if frame_folders:
            with open(os.path.join(out, f"{split}_list.txt"), "w") as f:
                f.writelines(f"{frel} {frames} {label}\n" for _, _, frel, label in items)
    save_label_map(os.path.join(out, "labels.txt"), names)
    meta = dict(
        name="SynthMotion", version=VERSION, classes=names, label_map_hash=label_map_hash(names),
        twins=[[a, b] for a, b in TWINS if a in names and b in names],
        flip_map={a: b for a, b in FLIP_MAP.items() if a in names and b in names},
        settings=dict(difficulty=difficulty, per_class=per_class, val_per_class=n_val, frames=frames, size=size,
                      seed=seed, fps=fps,
                      lossless=lossless, frame_folders=frame_folders, frame_template=tmpl if frame_folders else None,
                      codec="libx264rgb qp 0 (rgb24, .mkv)" if lossless else "libx264 crf 18 (yuv420p, .mp4)"),
    )
    with open(os.path.join(out, "classes.json"), "w") as f:
        json.dump(meta, f, indent=2)
    return SynthOutput(root=out, classes=names, train_csv=paths["train"], val_csv=paths["val"],
                       classes_json=os.path.join(out, "classes.json"), label_map=os.path.join(out, "labels.txt"),
                       videos=videos,
                       train_list=os.path.join(out, "train_list.txt") if frame_folders else None,
                       val_list=os.path.join(out, "val_list.txt") if frame_folders else None)


def generate_or_reuse(path: str, classes, *, per_class: int, frames: int, size: int, seed: int,
                      difficulty: str) -> bool:
    """Generate SynthMotion into ``path`` unless a set with exactly these settings is already there;
    returns True when it generated."""
    meta_path = os.path.join(path, "classes.json")
    want = dict(per_class=per_class, frames=frames, size=size, seed=seed, difficulty=difficulty)
    if os.path.isfile(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get("classes") == _parse_classes(classes) and all(meta["settings"].get(k) == v
                                                                  for k, v in want.items()):
            return False
    generate(path, classes=classes, **want)
    return True
