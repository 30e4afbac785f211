"""Manifests: the list of videos a batch-scoring run (``zoo score``) goes through.

A manifest is a CSV file with a header (``.csv``), a JSON-lines file (``.jsonl``, ``.json``: one
object per line) or a Parquet file (``.parquet``, read with pyarrow). Each row names one video in
a ``path`` column and, optionally, its ``id`` (any string; default: the path as written). Relative
paths are resolved against the manifest's folder. Ids must be unique: they key the results, and
a rerun resumes by them. Other columns are ignored.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List

from .._errors import InputNotFound, MissingDependency, UsageError
from .._files import display_name

__all__ = ["ManifestItem", "read_manifest", "manifest_digest", "MANIFEST_FORMATS"]

MANIFEST_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}


@dataclass(frozen=True)
class ManifestItem:
    """One video of a manifest: its ``id``, its ``path`` as resolved, its 0-based ``row``."""

    id: str
    path: str
    row: int


def _rows(path: str, fmt: str) -> List[Dict[str, Any]]:
    if fmt == "csv":
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    if fmt == "jsonl":
        rows = []
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise UsageError(f"{display_name(path)}, line {n}: not JSON ({e.msg}); a JSON-lines manifest "
                                         "has one object per line, e.g. {\"path\": \"videos/a.mp4\"}") from None
                    if not isinstance(row, dict):
                        raise UsageError(f"{display_name(path)}, line {n}: a JSON-lines manifest has one object per "
                                         "line, e.g. {\"path\": \"videos/a.mp4\"}")
                    rows.append(row)
        return rows
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependency("reading a Parquet manifest needs pyarrow: pip install 'zoo[score]'") from None
    return pq.read_table(path).to_pylist()


def read_manifest(path: str) -> List[ManifestItem]:
    """The videos of the manifest ``path`` (see the module docstring), in its order."""
    if not os.path.isfile(path):
        raise InputNotFound(f"manifest {display_name(path)!r} does not exist")
    ext = os.path.splitext(path)[1].lower()
    if ext not in MANIFEST_FORMATS:
        raise UsageError(f"manifest {display_name(path)}: unknown format {ext or '(no extension)'!r}; use "
                         f"{', '.join(MANIFEST_FORMATS)}")
    rows = _rows(path, MANIFEST_FORMATS[ext])
    if not rows:
        raise UsageError(f"manifest {display_name(path)} lists no video")
    if "path" not in rows[0]:
        raise UsageError(f"manifest {display_name(path)} has no 'path' column (columns: "
                         f"{', '.join(map(str, rows[0])) or 'none'}); name the videos' column 'path'")
    root = os.path.dirname(os.path.abspath(path))
    items, seen = [], {}
    for i, row in enumerate(rows):
        video = row.get("path")
        if not isinstance(video, str) or not video.strip():
            raise UsageError(f"manifest {display_name(path)}, row {i + 1}: no path")
        ident = row.get("id")
        ident = video if ident is None or ident == "" else str(ident)
        if ident in seen:
            raise UsageError(f"manifest {display_name(path)}: id {ident!r} on rows {seen[ident] + 1} and {i + 1}; "
                             "ids key the results and must be unique")
        seen[ident] = i
        resolved = video if "://" in video else os.path.join(root, os.path.expanduser(video))
        items.append(ManifestItem(ident, resolved, i))
    return items


def manifest_digest(items: List[ManifestItem]) -> str:
    """sha256 of the ids and resolved paths, in order: what a resumed run must find unchanged."""
    h = hashlib.sha256()
    for it in items:
        h.update(f"{it.id}\0{it.path}\n".encode())
    return h.hexdigest()
