"""``zoo synth`` (generate SynthMotion) and ``zoo check-data`` (scan a dataset for bad entries)."""
from __future__ import annotations

import os
import time

from .._errors import InputNotFound
from .._files import prepare_output_dir, prepare_output_file


def cmd_synth(args):
    from ..data import synth
    prepare_output_dir(args.out, "output directory")
    classes = args.classes
    if classes is not None and classes.isdigit():
        classes = int(classes)
    t0 = time.perf_counter()
    out = synth.generate(args.out, classes=classes, per_class=args.per_class, frames=args.frames, size=args.size,
                         seed=args.seed, frame_folders=args.frame_folders, lossless=args.lossless,
                         val_fraction=args.val_fraction, fps=args.fps, difficulty=args.difficulty)
    dt = time.perf_counter() - t0
    print(f"SynthMotion ({args.difficulty}): {len(out.videos)} clips ({len(out.classes)} classes x {args.per_class}) "
          f"of {args.frames} frames at {args.size}x{args.size} in {dt:.1f} s -> {out.root}")
    for p in (out.train_csv, out.val_csv, out.classes_json, out.label_map, out.train_list, out.val_list):
        if p:
            print(f"  {p}")
    return 0


def cmd_check(args):
    from ..data import MIN_FRAMES, build_dataset
    from ..data.check import check_dataset
    from ..data.splits import split_and_fold
    from ..models import ModelInfo, resolve
    if args.model:
        info = resolve(args.model).info
    else:  # no model: only the list, the files and a minimum length are checked
        info = ModelInfo(name="check-data", family="-", paper="-", num_frames=1, num_segments=1,
                         crop_size=32, resize_size=32)
    if not os.path.exists(args.spec):
        raise InputNotFound(f"dataset not found: {args.spec}")
    if args.json:
        prepare_output_file(args.json, "--json")
    split, fold = split_and_fold(args.split)
    ds = build_dataset(args.spec, info, split, views=(1, 1), root=args.root, label_map=args.labels,
                       bad_labels="keep", frame_folders=args.frame_folders,
                       frames_template=args.template, fold=fold)
    min_frames = args.min_frames if args.min_frames is not None else (None if args.model else MIN_FRAMES)
    report = check_dataset(ds, min_frames=min_frames, full_decode=args.full_decode)
    print(report.summary())
    if args.json:
        report.save(args.json)
        print(f"report written to {args.json}")
    return 0 if report.ok else 1


def register(sub):
    p = sub.add_parser("synth", help="generate the SynthMotion benchmark (H.264 clips + CSV splits)",
                       description="Write SynthMotion: clips whose class is decided only by motion over time, "
                                   "deterministically from --seed.")
    p.add_argument("out", help="output directory")
    p.add_argument("--classes", default=None,
                   help="number of classes (first N) or comma-separated names (default: all 14)")
    p.add_argument("--per-class", type=int, default=40, help="clips per class, train + val (default 40)")
    p.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    p.add_argument("--size", type=int, default=64, help="frame height = width in pixels, even (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--difficulty", default="standard", choices=("standard", "easy"),
                   help="standard (the benchmark, default) or easy: no distractors or camera jitter, little noise, "
                        "large high-contrast objects, large motion (still decided only by motion)")
    p.add_argument("--val-fraction", type=float, default=0.25, help="share of each class in val (default 0.25)")
    p.add_argument("--fps", type=int, default=15)
    p.add_argument("--frame-folders", action="store_true", help="also write frame folders + TSN list files")
    p.add_argument("--lossless", action="store_true", help="libx264rgb qp 0 .mkv and PNG frames (exact decoding)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("check-data", help="report unreadable, empty, too-short or mislabeled dataset entries",
                       description="Open every entry of a dataset and list each problem with its reason. "
                                   "Exit code 1 when problems are found.")
    p.add_argument("spec", help="CSV, TSN list, SSv2 JSON, class-folder tree or SynthMotion directory")
    p.add_argument("--split", default="val", help="split of a SynthMotion directory or class tree (default val), "
                   "or the official split 1-3 of a UCF101 / HMDB51 root (its test list)")
    p.add_argument("--model", help="model name: too-short means fewer frames than its clip needs")
    p.add_argument("--min-frames", type=int, help="minimum frames (default: from --model, else 3: fewer cannot be "
                                                  "evaluated or trained on)")
    p.add_argument("--labels", help="label-map file (.txt one name per line, or .json)")
    p.add_argument("--root", help="folder that relative paths in the list are resolved against")
    p.add_argument("--frame-folders", action="store_true", help="check a SynthMotion directory's frame folders")
    p.add_argument("--template", help="frame file names in frame folders (default img_{:05d}.jpg)")
    p.add_argument("--full-decode", action="store_true", help="decode every frame (slow; catches mid-file damage)")
    p.add_argument("--json", help="also write the report as JSON here")
    p.set_defaults(func=cmd_check)

