"""Training curves: ``RUN/curves.png`` (loss, accuracy and learning rate per epoch, redrawn after
every epoch) and TensorBoard event files under ``RUN/tensorboard`` when ``tensorboard`` is
installed (the optional extra ``zoo[tensorboard]``)."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from .checkpoint import atomic_write

__all__ = ["plot_curves", "TensorBoardLog"]


def plot_curves(history: List[Dict[str, Any]], path: str) -> None:
    """Draw ``history`` (`zoo.engine.training` entries) to the PNG ``path``, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    val = [(h["epoch"], h["val"]["video_top1"]) for h in history if "video_top1" in h.get("val", {})]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    axes[0].plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    axes[0].set_title("loss")
    axes[1].plot(epochs, [h["train_top1"] for h in history], "o-", label="train (clips)")
    if val:
        axes[1].plot(*zip(*val), "s-", label="val (videos)")
    axes[1].set_title("top-1 %")
    axes[1].legend(fontsize=8)
    axes[2].plot(epochs, [h["lr"] for h in history], "o-")
    axes[2].set_title("learning rate (end of epoch)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        atomic_write(path, "wb", lambda f: fig.savefig(f, format="png", dpi=90))
    finally:
        plt.close(fig)


class TensorBoardLog:
    """Scalars per epoch to ``RUN/tensorboard``; does nothing when ``tensorboard`` is not installed."""

    def __init__(self, out: str):
        self.writer: Optional[Any] = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # the optional extra is not installed
            return
        self.writer = SummaryWriter(os.path.join(out, "tensorboard"))

    def log(self, entry: Dict[str, Any]) -> None:
        if self.writer is None:
            return
        step = entry["epoch"]
        for key in ("train_loss", "train_top1", "lr"):
            self.writer.add_scalar(f"train/{key.replace('train_', '')}", entry[key], step)
        for key, value in entry.get("val", {}).items():
            if isinstance(value, (int, float)) and key not in ("num_videos", "num_skipped", "num_views"):
                self.writer.add_scalar(f"val/{key}", value, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
