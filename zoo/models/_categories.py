"""Class names of the label sets released checkpoints use, shipped as package data
(``zoo/models/categories/<label set>.txt``: one name per line in index order; ``#`` lines say
where the order comes from and how it was checked)."""
from __future__ import annotations

import functools
from importlib import resources
from typing import Tuple

__all__ = ["categories", "label_sets", "categories_source"]

_FROM_TORCHVISION = {"imagenet"}  # the 2D initialisations' classifier: torchvision's weights metadata names it


def label_sets() -> Tuple[str, ...]:
    """Names of the label sets that ship (e.g. ``kinetics400``, ``something-something-v2``)."""
    files = resources.files(__package__).joinpath("categories").iterdir()
    return tuple(sorted(f.name[:-4] for f in files if f.name.endswith(".txt")))


@functools.lru_cache(maxsize=None)
def categories(label_set: str) -> Tuple[str, ...]:
    """The class names of ``label_set`` in index order; empty if zoo ships none for it."""
    if label_set in _FROM_TORCHVISION:
        from torchvision.models import ResNet50_Weights

        return tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
    path = resources.files(__package__).joinpath("categories", f"{label_set}.txt")
    if not path.is_file():
        return ()
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(line for line in lines if line and not line.startswith("#"))


def categories_source(label_set: str) -> str:
    """Where the class names of ``label_set`` come from, in words (for model cards)."""
    if label_set in _FROM_TORCHVISION:
        return "from torchvision's weights metadata"
    return "shipped with zoo" if categories(label_set) else "not shipped"
