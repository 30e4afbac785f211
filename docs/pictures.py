"""The documentation's pictures, made by zoo itself from a small run on the bundled SynthMotion data:

- ``docs/img/training_curves.png``: ``zoo train``'s ``curves.png`` of a small TSM trained from scratch;
- ``docs/img/confusion.png``: its evaluation's confusion matrix (``zoo eval``);
- ``docs/img/timeline.png``: ``zoo predict --timeline`` of that network over a 40 s video of the
  four classes in turn.

(The accuracy-vs-GFLOPs plot is ``zoo cards``'s.) About 2 minutes on 2 cores:

    python docs/pictures.py [--work runs/pictures]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CLASSES = ["moving_right", "moving_left", "moving_down", "moving_up"]


def _video(path: str, seconds_each: int = 5, rounds: int = 2, size: int = 64, fps: int = 15) -> None:
    """The four classes in turn, ``seconds_each`` seconds each, ``rounds`` times."""
    from zoo.data import synth

    def frames():
        for k in range(rounds * len(CLASSES)):
            clip = synth.render_clip(CLASSES[k % len(CLASSES)], np.random.default_rng([7, k]), size,
                                     seconds_each * fps, "easy")
            yield from clip
    synth.write_video(path, frames(), fps=fps)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="runs/pictures", help="where the data and runs go (kept)")
    a = p.parse_args(argv)
    from zoo.cli import main as zoo

    data, run, img = os.path.join(a.work, "data"), os.path.join(a.work, "tsm"), os.path.join(HERE, "img")
    os.makedirs(img, exist_ok=True)
    steps = [["synth", data, "--classes", str(len(CLASSES)), "--per-class", "64", "--difficulty", "easy",
              "--size", "32", "--seed", "0"],
             ["train", "tsm_r50", "--recipe", "small-from-scratch", "--data", data, "--out", run, "--no-progress"]]
    for step in steps:
        if zoo(step) != 0:
            raise SystemExit(f"zoo {' '.join(step)} failed")
    video = os.path.join(a.work, "four_classes.mp4")
    _video(video)
    timeline = os.path.join(a.work, "timeline")
    if zoo(["predict", video, "--weights", os.path.join(run, "model.pt"), "--timeline", "--out", timeline,
            "--window-sec", "2", "--stride-sec", "0.5", "--no-progress"]) != 0:
        raise SystemExit("zoo predict --timeline failed")
    copies = {os.path.join(run, "curves.png"): "training_curves.png",
              os.path.join(run, "eval", "confusion_matrix.png"): "confusion.png",
              os.path.join(timeline, "timeline.png"): "timeline.png"}
    for src, name in copies.items():
        shutil.copyfile(src, os.path.join(img, name))
        print(f"{src} -> docs/img/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
