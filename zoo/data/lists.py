"""List formats: reading a dataset spec into `Record`s and a label map.

Formats read by :func:`resolve_spec` (``spec``):

- Kinetics-style CSV ``path,label[,start,end]`` (header optional; label = class name or int;
  start/end in seconds trim the video). Lines without a comma are split on whitespace
  (PySlowFast's ``path label``).
- Something-Something V2: the annotations JSON (``[{"id", "template", ...}]``) plus the labels
  JSON (``{"class name": "index"}``, given as ``label_map`` or found next to the annotations as
  ``*labels.json``). Items are frame folders ``root/<id>/`` (``{:06d}.jpg``) or ``root/<id>.webm``.
  The class is the template with the brackets removed (official convention).
- TSN list file: ``frame_dir num_frames label`` per line (space-separated, label an int).
- Class-folder tree ``root/<class>/<video file or frame folder>`` (``root/<split>/<class>/...``
  when a ``split`` folder exists). Class names sorted.
- A SynthMotion directory (has ``classes.json``): ``<split>.csv`` with its label map and flip map.
- A UCF101 or HMDB51 root with its official split files (`zoo.data.splits`; ``fold`` 1-3).

Relative paths are resolved against ``root`` (default: the list file's folder).

Label map: ``label_map`` (file, see :func:`zoo.data.labels.load_label_map`) if given, else a
``labels.txt`` next to the list file, else from the list: class names sorted alphabetically,
or ``"0".."N-1"`` for integer labels. A row whose label cannot be resolved keeps ``label=None``
and says why in ``Record.problem``.
"""
from __future__ import annotations

import csv
import json
import os
from typing import List, Optional, Tuple

from .._errors import BadData, InputNotFound, UsageError
from .._files import display_name, read_text
from .labels import load_label_map
from .records import Record
from .splits import read_split, split_format

__all__ = ["Record", "resolve_spec", "read_csv", "read_tsn_list", "read_ssv2", "read_class_folders",
           "VIDEO_EXTENSIONS"]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")


# -- label resolution ----------------------------------------------------------------------
class _Labels:
    """Resolve label strings against a fixed label map or collect them to build one."""

    def __init__(self, names: Optional[List[str]]):
        self.names = names
        self.index = {n: i for i, n in enumerate(names)} if names else None

    def resolve(self, records: List[Record], raw: List[str]) -> List[str]:
        if self.names is None:  # build the map from the list itself
            if all(_is_int(r) for r in raw if r is not None):
                n = max([int(r) for r in raw if r is not None] + [-1]) + 1
                self.names = [str(i) for i in range(n)]
            else:
                self.names = sorted({r for r in raw if r is not None})
            self.index = {n: i for i, n in enumerate(self.names)}
        for rec, r in zip(records, raw):
            if rec.problem or r is None:
                continue
            if r in self.index:
                rec.label = self.index[r]
            elif _is_int(r) and 0 <= int(r) < len(self.names):
                rec.label = int(r)
            else:
                rec.problem = (f"label {r!r} is not in the label map ({len(self.names)} classes)"
                               + (f": {rec.source}" if rec.source else ""))
        return self.names


def _is_int(s) -> bool:
    try:
        int(s)
        return True
    except (TypeError, ValueError):
        return False


def _resolve(root: str, p: str) -> str:
    return p if os.path.isabs(p) else os.path.join(root, p)


# -- parsers -------------------------------------------------------------------------------
def read_csv(path: str, root: Optional[str] = None, label_map: Optional[List[str]] = None
             ) -> Tuple[List[Record], List[str]]:
    """Kinetics-style ``path,label[,start,end]`` list; see the module docstring."""
    root = os.path.dirname(os.path.abspath(path)) if root is None else root
    records, raw = [], []
    lines = read_text(path).splitlines()
    for lineno, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        row = next(csv.reader([line])) if "," in line else line.split()
        row = [c.strip() for c in row]
        if lineno == 1 and len(row) >= 2 and row[0].lower() in ("path", "video", "filename") \
                and row[1].lower() in ("label", "class", "category"):
            continue  # header
        src = f"{path}:{lineno}"
        if len(row) not in (2, 4):
            records.append(Record(_resolve(root, row[0]) if row else "", None, source=src,
                                  problem=f"expected 'path,label[,start,end]', got {len(row)} fields: {src}"))
            raw.append(None)
            continue
        rec = Record(_resolve(root, row[0]), None, source=src)
        if len(row) == 4:
            try:
                rec.start, rec.end = float(row[2]), float(row[3])
                if rec.end <= rec.start:
                    rec.problem = f"end {rec.end} <= start {rec.start}: {src}"
            except ValueError:
                rec.problem = f"start/end must be seconds, got {row[2]!r}, {row[3]!r}: {src}"
        records.append(rec)
        raw.append(row[1])
    names = _Labels(label_map).resolve(records, raw)
    return records, names


def read_tsn_list(path: str, root: Optional[str] = None, label_map: Optional[List[str]] = None
                  ) -> Tuple[List[Record], List[str]]:
    """TSN list file: ``frame_dir num_frames label`` per line."""
    root = os.path.dirname(os.path.abspath(path)) if root is None else root
    records, raw = [], []
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        parts, src = line.split(), f"{path}:{lineno}"
        if len(parts) < 3 or not _is_int(parts[-2]):
            records.append(Record(_resolve(root, parts[0]), None, source=src,
                                  problem=f"expected 'frame_dir num_frames label': {src}"))
            raw.append(None)
            continue
        # Folder names with spaces: everything before the last two fields.
        d = " ".join(parts[:-2])
        records.append(Record(_resolve(root, d), None, num_frames=int(parts[-2]), source=src))
        raw.append(parts[-1])
    names = _Labels(label_map).resolve(records, raw)
    return records, names


def _ssv2_class(template: str) -> str:
    return template.replace("[", "").replace("]", "")


def read_ssv2(path: str, root: Optional[str] = None, label_map: Optional[List[str]] = None
              ) -> Tuple[List[Record], List[str]]:
    """Something-Something V2 annotations JSON; ``label_map`` from the labels JSON."""
    root = os.path.dirname(os.path.abspath(path)) if root is None else root
    if label_map is None:
        d = os.path.dirname(os.path.abspath(path))
        found = sorted(f for f in os.listdir(d) if f.endswith("labels.json"))
        if not found:
            raise InputNotFound(f"{path}: SSv2 annotations need the labels JSON; pass label_map=... "
                                    f"(none named '*labels.json' next to it)")
        label_map = load_label_map(os.path.join(d, found[0]))
    items = _json(path)
    if not isinstance(items, list):
        raise BadData(f"{path}: expected a list of {{'id', 'template'}} annotations")
    records, raw = [], []
    for k, it in enumerate(items):
        src = f"{path}[{k}]"
        vid = str(it.get("id", ""))
        folder = os.path.join(root, vid)
        p = folder if os.path.isdir(folder) or not os.path.exists(folder + ".webm") else folder + ".webm"
        rec = Record(p, None, source=src)
        if not vid:
            rec.problem = f"annotation without an 'id': {src}"
        lab = it.get("template", it.get("label"))
        records.append(rec)
        raw.append(_ssv2_class(lab) if lab is not None else None)
        if lab is None and not rec.problem:
            rec.problem = f"annotation without 'template': {src}"
    names = _Labels(label_map).resolve(records, raw)
    return records, names


def read_class_folders(root: str, label_map: Optional[List[str]] = None) -> Tuple[List[Record], List[str]]:
    """``root/<class>/<video file or frame folder>``; classes sorted unless ``label_map``."""
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    records, raw = [], []
    for c in classes:
        cdir = os.path.join(root, c)
        for name in sorted(os.listdir(cdir)):
            p = os.path.join(cdir, name)
            if os.path.isdir(p) or name.lower().endswith(VIDEO_EXTENSIONS):
                records.append(Record(p, None, source=p))
                raw.append(c)
    if not records:
        raise BadData(f"{root}: no videos ({', '.join(VIDEO_EXTENSIONS)}) or frame folders under "
                         f"class folders")
    names = _Labels(label_map or classes).resolve(records, raw)
    return records, names


# -- the dataset ---------------------------------------------------------------------------

# -- specs -----------------------------------------------------------------------------------
def _json(path: str):
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise BadData(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


def _looks_like_a_video(path: str) -> bool:
    if path.lower().endswith(VIDEO_EXTENSIONS):
        return True
    with open(path, "rb") as f:
        return b"\0" in f.read(4096)  # text list files hold no NUL byte; containers do


def _sniff_list(path: str) -> str:
    for line in read_text(path).splitlines():
        if line.strip():
            parts = line.split()
            if "," not in line and len(parts) >= 3 and _is_int(parts[-2]) and _is_int(parts[-1]):
                return "tsn"
            return "csv"
    raise BadData(f"{path}: empty list file")


def resolve_spec(spec, split: str = "val", *, root: Optional[str] = None, label_map: Optional[str] = None,
                 frame_folders: bool = False, fold: Optional[int] = None):
    """Parse ``spec`` into ``(records, class_names, extras)``; extras holds flip_map / frames_template.
    ``fold``: the official split (1-3) of a UCF101 / HMDB51 root (`zoo.data.splits`; default 1)."""
    if isinstance(spec, (tuple, list)) and len(spec) == 2:  # (SSv2 annotations, labels JSON)
        spec, label_map = spec
    spec = os.fspath(spec)
    names = load_label_map(label_map) if label_map else None
    extras: dict = {"format": None, "flip": True}
    layout = split_format(spec) if os.path.isdir(spec) else None
    if layout or fold is not None:
        if not layout:
            raise UsageError(f"{spec}: --split N takes a UCF101 or HMDB51 root (with ucfTrainTestlist/ or "
                             f"testTrainMulti_7030_splits/); other data has no official splits")
        recs, names = read_split(spec, split, fold or 1)
        extras["format"] = layout
        return recs, names, extras
    if os.path.isdir(spec):
        cj = os.path.join(spec, "classes.json")
        if os.path.isfile(cj):
            meta = _json(cj)
            names = names or [str(c) for c in meta["classes"]]
            extras.update(format="synthmotion", flip_map=meta.get("flip_map", {}))
            settings = meta.get("settings", {})
            lst = os.path.join(spec, f"{split}_list.txt")
            if frame_folders:
                if not os.path.isfile(lst):
                    raise InputNotFound(f"{spec}: no frame folders ({split}_list.txt); generate with "
                                            f"frame_folders=True (`zoo synth --frame-folders`)")
                extras["frames_template"] = settings.get("frame_template") or "img_{:05d}.jpg"
                recs, names = read_tsn_list(lst, root, names)
                return recs, names, extras
            csv_path = os.path.join(spec, f"{split}.csv")
            if not os.path.isfile(csv_path):
                avail = sorted(f[:-4] for f in os.listdir(spec) if f.endswith(".csv"))
                raise InputNotFound(f"{spec}: no split {split!r} ({split}.csv); available: {avail}")
            recs, names = read_csv(csv_path, root, names)
            return recs, names, extras
        base = os.path.join(spec, split) if os.path.isdir(os.path.join(spec, split)) else spec
        extras["format"] = "folders"
        recs, names = read_class_folders(base, names)
        return recs, names, extras
    if not os.path.isfile(spec):
        raise InputNotFound(f"dataset spec not found: {spec}")
    if _looks_like_a_video(spec):
        raise BadData(f"{display_name(spec)} is a video, not a dataset: pass a list file (CSV, TSN list, SSv2 JSON), "
                         f"a class-folder tree or a SynthMotion directory; `zoo predict MODEL VIDEO` classifies one video")
    if names is None:
        sibling = os.path.join(os.path.dirname(os.path.abspath(spec)), "labels.txt")
        if os.path.isfile(sibling) and not spec.endswith(".json"):
            names = load_label_map(sibling)
            cj = os.path.join(os.path.dirname(os.path.abspath(spec)), "classes.json")
            if os.path.isfile(cj):  # a list inside a SynthMotion directory: keep its flip map
                meta = _json(cj)
                extras["flip_map"] = meta.get("flip_map", {})
                if meta.get("settings", {}).get("frame_template"):
                    extras["frames_template"] = meta["settings"]["frame_template"]
    if spec.endswith(".json"):
        extras.update(format="ssv2", flip=False, frames_template="{:06d}.jpg")  # no flips for SSv2 (TSM/PAN)
        recs, names = read_ssv2(spec, root, names)
    elif _sniff_list(spec) == "tsn":
        extras["format"] = "tsn"
        recs, names = read_tsn_list(spec, root, names)
    else:
        extras["format"] = "csv"
        recs, names = read_csv(spec, root, names)
    return recs, names, extras
