"""Label maps: ordered class names, read from a file and fingerprinted by a hash."""
from __future__ import annotations

import hashlib
import json
from typing import List, Sequence

from .._errors import BadData
from .._files import read_text

__all__ = ["label_map_hash", "load_label_map", "save_label_map"]


def label_map_hash(class_names: Sequence[str]) -> str:
    """sha256 (hex) of the label map as :func:`save_label_map` writes it: one name per line."""
    return hashlib.sha256(("\n".join(class_names) + "\n").encode("utf-8")).hexdigest()


def save_label_map(path: str, class_names: Sequence[str]) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(class_names) + "\n")
    return label_map_hash(class_names)


def load_label_map(path: str) -> List[str]:
    """Class names in label order from a label-map file.

    ``.txt``: one name per line (line i = label i). ``.json``: a list of names, a
    SynthMotion ``classes.json`` (``{"classes": [...]}``), or an SSv2-style
    ``{"name": "index"}`` mapping (indices must be 0..N-1).
    """
    if path.endswith(".json"):
        try:
            data = json.loads(read_text(path))
        except json.JSONDecodeError as e:
            raise BadData(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        if isinstance(data, dict) and "classes" in data:
            data = data["classes"]
        if isinstance(data, list):
            names = [str(x) for x in data]
        elif isinstance(data, dict):
            try:
                pairs = sorted((int(v), str(k)) for k, v in data.items())
            except (TypeError, ValueError):
                raise BadData(f"{path}: a JSON label map must map names to integer indices") from None
            if [i for i, _ in pairs] != list(range(len(pairs))):
                raise BadData(f"{path}: label indices must be 0..{len(pairs) - 1} without gaps")
            names = [n for _, n in pairs]
        else:
            raise BadData(f"{path}: expected a list of class names or a name -> index mapping")
    else:
        names = [line.strip() for line in read_text(path).splitlines() if line.strip()]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise BadData(f"{path}: duplicate class names in the label map: {dup[:5]}")
    if not names:
        raise BadData(f"{path}: empty label map")
    return names
