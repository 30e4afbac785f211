"""UCF101 and HMDB51 as they unpack, with their three official train/test splits.

- UCF101 (Soomro et al., 2012): ``ROOT/UCF-101/<Class>/*.avi`` and ``ROOT/ucfTrainTestlist/``
  with ``classInd.txt`` (``1 ApplyEyeMakeup``: the class order), ``trainlist0N.txt``
  (``Class/v_Class_g08_c01.avi 1``) and ``testlist0N.txt`` (``Class/v_Class_g01_c01.avi``).
- HMDB51 (Kuehne et al., ICCV 2011): ``ROOT/<class>/*.avi`` and
  ``ROOT/testTrainMulti_7030_splits/<class>_test_splitN.txt`` (``name.avi 1``: 1 train, 2 test,
  0 unused); classes in alphabetical order.

Split ``train`` reads the train list of fold N, any other split (``val``, ``test``) its test
list, so an evaluation covers exactly the official test list. A listed video that is not on
disk keeps its place (its decoding fails under the on-error policy, naming the path; never
dropped silently). File names are matched case-insensitively where the exact name is missing
(UCF101's lists spell ``HandStandPushups`` where its folder is ``HandstandPushups``).
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

from .._errors import BadData, InputNotFound, UsageError
from .._files import read_text
from .records import Record

__all__ = ["UCF101_LISTS", "HMDB51_SPLITS", "split_format", "read_ucf101", "read_hmdb51", "read_split",
           "split_and_fold"]

UCF101_LISTS = "ucfTrainTestlist"
HMDB51_SPLITS = "testTrainMulti_7030_splits"


def split_format(root: str) -> Optional[str]:
    """``"ucf101"``, ``"hmdb51"`` or None: which official split layout ``root`` holds."""
    if os.path.isdir(os.path.join(root, UCF101_LISTS)):
        return "ucf101"
    if os.path.isdir(os.path.join(root, HMDB51_SPLITS)):
        return "hmdb51"
    return None


class _Finder:
    """A path under ``base``, exact if it exists, else matched case-insensitively per folder."""

    def __init__(self, base: str):
        self.base, self.folders = base, {}

    def _listing(self, folder: str) -> Dict[str, str]:
        if folder not in self.folders:
            names = os.listdir(folder) if os.path.isdir(folder) else []
            self.folders[folder] = {n.lower(): n for n in names}
        return self.folders[folder]

    def find(self, relative: str) -> Optional[str]:
        path = os.path.join(self.base, relative)
        if os.path.exists(path):
            return path
        folder = self.base
        for part in relative.replace("\\", "/").split("/"):
            name = self._listing(folder).get(part.lower())
            if name is None:
                return None
            folder = os.path.join(folder, name)
        return folder


def _check_fold(fold: int) -> None:
    if fold not in (1, 2, 3):
        raise UsageError(f"split must be 1, 2 or 3, got {fold}")


def read_ucf101(root: str, split: str, fold: int) -> Tuple[List[Record], List[str]]:
    _check_fold(fold)
    lists = os.path.join(root, UCF101_LISTS)
    classes = [line.split()[1] for line in read_text(os.path.join(lists, "classInd.txt")).splitlines() if line.strip()]
    index = {c.lower(): i for i, c in enumerate(classes)}
    kind = "train" if split == "train" else "test"
    list_path = os.path.join(lists, f"{kind}list0{fold}.txt")
    if not os.path.isfile(list_path):
        raise InputNotFound(f"{root}: no {UCF101_LISTS}/{kind}list0{fold}.txt")
    videos = next((os.path.join(root, d) for d in ("UCF-101", "UCF101") if os.path.isdir(os.path.join(root, d))),
                  None)
    if videos is None:
        raise InputNotFound(f"{root}: no UCF-101/ folder of class folders beside {UCF101_LISTS}/")
    finder, records = _Finder(videos), []
    for lineno, line in enumerate(read_text(list_path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        src = f"{list_path}:{lineno}"
        relative, cls = parts[0], parts[0].replace("\\", "/").split("/")[0]
        path = finder.find(relative)
        rec = Record(path or os.path.join(videos, relative), index.get(cls.lower()), source=src)
        if rec.label is None:
            rec.problem = f"class {cls!r} is not in classInd.txt: {src}"
        records.append(rec)
    return records, classes


def read_hmdb51(root: str, split: str, fold: int) -> Tuple[List[Record], List[str]]:
    _check_fold(fold)
    splits = os.path.join(root, HMDB51_SPLITS)
    suffix = f"_test_split{fold}.txt"
    files = sorted(f for f in os.listdir(splits) if f.endswith(suffix))
    if not files:
        raise InputNotFound(f"{root}: no {HMDB51_SPLITS}/<class>{suffix} files")
    classes = [f[:-len(suffix)] for f in files]
    wanted = "1" if split == "train" else "2"
    finder, records = _Finder(root), []
    for label, (cls, name) in enumerate(zip(classes, files)):
        list_path = os.path.join(splits, name)
        for lineno, line in enumerate(read_text(list_path).splitlines(), 1):
            parts = line.split()
            if len(parts) < 2 or parts[1] != wanted:
                continue
            path = finder.find(f"{cls}/{parts[0]}")
            records.append(Record(path or os.path.join(root, cls, parts[0]), label, source=f"{list_path}:{lineno}"))
    return records, classes


def read_split(root: str, split: str, fold: int) -> Tuple[List[Record], List[str]]:
    """The records and class names of ``root``'s official split ``fold`` (see the module docstring)."""
    fmt = split_format(root)
    if fmt is None:
        raise BadData(f"{root}: --split needs UCF101 ({UCF101_LISTS}/) or HMDB51 ({HMDB51_SPLITS}/) split files")
    return (read_ucf101 if fmt == "ucf101" else read_hmdb51)(root, split, fold)


def split_and_fold(text: str, fold: Optional[int] = None) -> Tuple[str, Optional[int]]:
    """A command line's ``--split``: a split name (``val``, ``train``) or an official fold number
    (``1``-``3``: that fold's test list)."""
    text = str(text)
    return ("val", int(text)) if text.isdigit() else (text, fold)
