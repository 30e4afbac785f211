"""`Record`: one entry of a dataset, as every list format and the official splits read it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["Record"]


@dataclass
class Record:
    path: str  # video file or frame folder (absolute, or relative to the working directory)
    label: Optional[int]  # None when the label could not be resolved (see `problem`)
    start: Optional[float] = None  # seconds
    end: Optional[float] = None
    num_frames: Optional[int] = None  # declared by a TSN list file
    source: str = ""  # "list-file:line" for messages
    problem: Optional[str] = None  # a problem found while parsing (unknown label, bad line)
