"""Scan a dataset and report every entry that cannot be used as intended, with its reason.

Kinds of problems:

- ``mislabeled``: the label is not in the label map (or the list line is malformed);
- ``missing``: the file or frame folder does not exist;
- ``empty``: a zero-byte file, a folder without frames, or a video without decodable frames;
- ``unreadable``: the container or a frame cannot be decoded (truncated, not a video, audio only);
- ``too_short``: fewer frames than ``min_frames`` (the sampler would repeat frames);
- ``frame_count``: a TSN list declares a frame count the folder does not have.

Every video is opened and its first and last frames decoded; ``full_decode=True`` decodes every
frame and compares the count with the container's.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import List, Optional

from .._files import atomic_write_text
from .decoders import DecodeError, FrameFolderDecoder, count_frames

__all__ = ["Problem", "CheckReport", "check_dataset", "min_frames_for"]


@dataclass
class Problem:
    index: int
    path: str
    kind: str
    reason: str


@dataclass
class CheckReport:
    num_items: int
    num_classes: int
    label_map_hash: str
    min_frames: int
    problems: List[Problem] = field(default_factory=list)
    class_counts: dict = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)  # doubts that are not a bad entry (exit code unchanged)

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict:
        return dict(Counter(p.kind for p in self.problems))

    def summary(self) -> str:
        lines = [f"{self.num_items} items, {self.num_classes} classes, label map sha256 {self.label_map_hash[:16]}, "
                 f"min_frames {self.min_frames}"]
        lines += [f"warning: {w}" for w in self.warnings]
        if self.ok:
            lines.append("no problems found")
        else:
            c = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts().items()))
            lines.append(f"{len(self.problems)} problem(s) ({c}):")
            lines += [f"  [{p.kind}] #{p.index} {p.path}: {p.reason}" for p in self.problems]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"], d["problem_counts"] = self.ok, self.counts()
        return d

    def save(self, path: str) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2))


def min_frames_for(info) -> int:
    """Frames a video needs so that a clip of this model repeats none: the dense window or T*L."""
    if info.sampling == "dense":
        return info.num_frames * info.sampling_rate
    return info.num_segments * info.segment_length


def _kind_of(reason: str) -> str:
    r = reason.lower()
    if "not found" in r:
        return "missing"
    if "empty" in r or "0 bytes" in r or "no decodable frames" in r or "no frames" in r:
        return "empty"
    return "unreadable"


def check_dataset(dataset, *, min_frames: Optional[int] = None, full_decode: bool = False,
                  progress=None) -> CheckReport:
    """Check every record of a :class:`~zoo.data.VideoDataset` (built with ``bad_labels="keep"``
    so that mislabeled entries are kept for reporting). ``progress``: optional callable(i, n)."""
    mf = min_frames_for(dataset.info) if min_frames is None else int(min_frames)
    names = dataset.class_names
    report = CheckReport(num_items=len(dataset), num_classes=len(names), label_map_hash=dataset.label_map_hash,
                         min_frames=mf)
    counts = Counter()
    for i, rec in enumerate(dataset.records):
        if progress:
            progress(i, len(dataset.records))
        if rec.problem:
            report.problems.append(Problem(i, rec.path, "mislabeled", rec.problem))
            continue
        counts[names[rec.label]] += 1
        try:
            with dataset.open(rec) as dec:
                first, n = dataset.frame_range(rec, dec.meta)
                if isinstance(dec, FrameFolderDecoder) and rec.num_frames is not None:
                    actual = count_frames(rec.path, dec.template, dec.start_index)
                    if actual != rec.num_frames:
                        report.problems.append(Problem(i, rec.path, "frame_count",
                                                       f"list says {rec.num_frames} frames, folder has {actual}"))
                        n = min(n, actual)
                if n <= 0:
                    report.problems.append(Problem(i, rec.path, "empty", "no frames"))
                    continue
                if full_decode and not isinstance(dec, FrameFolderDecoder):
                    got = len(dec.read_all())
                    if got < dec.meta.num_frames - 2:
                        report.problems.append(Problem(i, rec.path, "unreadable",
                                                       f"decoded {got} of {dec.meta.num_frames} frames"))
                        continue
                else:
                    dec.get_frames([first, first + n - 1])
                if n < mf:
                    report.problems.append(Problem(i, rec.path, "too_short",
                                                   f"{n} frames < {mf} needed (frames would repeat)"))
        except DecodeError as e:
            report.problems.append(Problem(i, e.path, _kind_of(e.reason), e.reason))
    report.class_counts = {n: counts.get(n, 0) for n in names}
    report.warnings += _implied_classes_warning(dataset)
    return report


def _implied_classes_warning(dataset) -> List[str]:
    """Integer labels without a label map make ``max + 1`` classes: one stray label (999 among 0-3)
    makes a 1000-class problem out of a 4-class one. Warn when most of those classes have no video."""
    names = dataset.class_names
    if len(names) < 3 or names != [str(i) for i in range(len(names))]:
        return []
    used = Counter(r.label for r in dataset.records if r.label is not None)
    empty = len(names) - len(used)
    if empty * 2 <= len(names):
        return []
    highest = sorted(used)[-3:][::-1]
    where = ", ".join(f"{k} at {next(r.source or r.path for r in dataset.records if r.label == k)}" for k in highest)
    return [f"integer labels 0-{len(names) - 1} make {len(names)} classes and {empty} of them have no video "
            f"(highest labels: {where}): is a label wrong, or is the label map (--labels FILE) missing?"]
