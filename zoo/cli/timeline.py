"""``zoo predict NAME VIDEO --timeline``: sliding-window predictions over a video of any length,
written as CSV, JSON (with merged segments) and a plot, and optionally drawn onto the video."""
from __future__ import annotations

import csv
import json
import os
import time
from typing import List, Optional

from .._files import display_name, prepare_output_dir, temp_path
from . import UsageError

__all__ = ["add_timeline_options", "cmd_timeline", "write_timeline", "timeline_figure", "render_video", "draw_labels"]


def add_timeline_options(p) -> None:
    g = p.add_argument_group("timeline (long videos)")
    g.add_argument("--timeline", action="store_true",
                   help="classify sliding windows over the whole video instead of one prediction")
    g.add_argument("--window-sec", type=float, metavar="W",
                   help="window length in seconds (default: one clip of the model: num_frames x rate for 3D "
                        "models, a typical training clip of its dataset for TSN/TSM/PAN, e.g. 10 s for Kinetics)")
    g.add_argument("--stride-sec", type=float, metavar="S", help="seconds between window starts (default 1)")
    g.add_argument("--out", metavar="DIR", help="output directory for timeline.csv/.json/.png (created)")
    g.add_argument("--batch", type=int, default=4, help="windows per forward pass (default 4)")
    g.add_argument("--smooth", type=int, metavar="N",
                   help="segments: windows averaged (default: the windows that cover one instant, window / stride)")
    g.add_argument("--min-windows", type=int, metavar="N",
                   help="segments: the shortest segment, in windows (default: one window's length, window / stride)")
    g.add_argument("--plot-classes", type=int, default=5, help="classes drawn in timeline.png (default 5)")
    g.add_argument("--render", action="store_true", help="also write DIR/timeline.mp4 with the labels drawn")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--timeout", type=float, default=10.0,
                   help="a URL source: seconds to wait for it to answer or send data (default 10)")


def write_timeline(out: str, doc: dict, windows, names: List[str], topk: int, plot_classes: int) -> List[str]:
    """DIR/timeline.csv, .json and .png from the classified ``windows``; returns the paths."""
    import io

    from ..engine.checkpoint import atomic_write_text

    rows = io.StringIO()
    w = csv.writer(rows)
    w.writerow(["start", "end", "first_frame"] + [f"{c}_{i}" for i in range(1, topk + 1) for c in ("label", "prob")])
    for win in windows:
        top = win.probs.topk(topk)
        w.writerow([f"{win.start:.3f}", f"{win.end:.3f}", win.first_frame] +
                   [x for p, c in zip(top.values.tolist(), top.indices.tolist()) for x in (names[c], f"{p:.4f}")])
    paths = [os.path.join(out, f"timeline.{ext}") for ext in ("csv", "json", "png")]
    atomic_write_text(paths[0], rows.getvalue())
    atomic_write_text(paths[1], json.dumps(doc, indent=1) + "\n")
    _plot(paths[2], doc, windows, names, plot_classes)
    return paths


def _segment_colours(segs, shown: List[int], plt) -> dict:
    """A colour per class of the segments: the plotted classes first (their curves' colours), then
    the classes covering the most time; beyond 20 classes the rest share grey."""
    colours = {c: plt.cm.tab10(i % 10) for i, c in enumerate(shown)}
    cover: dict = {}
    for s in segs:
        cover[s["class_index"]] = cover.get(s["class_index"], 0.0) + s["end"] - s["start"]
    extra = [c for c in sorted(cover, key=lambda c: -cover[c]) if c not in colours]
    palette = [plt.cm.tab20(i) for i in range(1, 20, 2)]  # the lighter tab20 halves: unlike tab10's
    for c, colour in zip(extra, palette):
        colours[c] = colour
    return colours


def _plot(path: str, doc: dict, windows, names: List[str], plot_classes: int) -> None:
    import matplotlib.pyplot as plt

    fig = timeline_figure(doc, windows, names, plot_classes)
    tmp = temp_path(path, "plot", ".png")
    try:
        fig.savefig(tmp, format="png", dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)


def timeline_figure(doc: dict, windows, names: List[str], plot_classes: int):
    """The figure of timeline.png: the top classes' probabilities over time, and the segments as
    coloured spans, labelled where a label fits, with a legend of their classes by colour."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from matplotlib.patches import Patch

    probs = torch.stack([w.probs for w in windows])
    shown = probs.max(0).values.topk(min(plot_classes, probs.shape[1])).indices.tolist()
    centres = [w.centre for w in windows]
    segs = doc["segments"]
    colours = _segment_colours(segs, shown, plt)
    grey = (0.7, 0.7, 0.7, 1)
    fig, (ax, band) = plt.subplots(2, 1, figsize=(10, 5), sharex=True, height_ratios=[4, 1])
    for c in shown:
        ax.plot(centres, probs[:, c].numpy(), marker="." if len(windows) < 60 else None, label=display_name(names[c]),
                color=colours[c])
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.set_title(f"{display_name(os.path.basename(doc['source']))}: {display_name(doc['weights'])}, window "
                 f"{doc['window_sec']:.2f} s, stride {doc['stride_sec']:.2f} s", fontsize=9)
    ax.legend(fontsize=8, loc="upper right", ncol=min(3, len(shown)))
    start, end = windows[0].start, max(windows[-1].end, windows[0].start + 1e-6)
    band.set_xlim(start, end)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    # a label is drawn only inside a segment wide enough to hold it; the legend names every colour
    px_per_s = band.get_window_extent().width / (end - start)
    for s in segs:
        band.axvspan(s["start"], s["end"], color=colours.get(s["class_index"], grey), alpha=0.6, linewidth=0)
        label = display_name(s["label"])
        if (s["end"] - s["start"]) * px_per_s >= 5.5 * len(label) + 6:
            band.text(0.5 * (s["start"] + s["end"]), 0.5, label, ha="center", va="center", fontsize=7, clip_on=True)
    classes = [c for c in colours if any(s["class_index"] == c for s in segs)]
    handles = [Patch(color=colours[c], alpha=0.6, label=display_name(names[c])) for c in classes]
    if any(s["class_index"] not in colours for s in segs):
        handles.append(Patch(color=grey, alpha=0.6, label="other classes"))
    band.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.55), ncol=min(5, len(handles)),
                frameon=False)
    band.set_yticks([])
    band.set_ylabel("segments", fontsize=8)
    band.set_xlabel("time (s, window centres)")
    return fig


def top_classes(probs, names: List[str], k: int) -> List[tuple]:
    """The ``k`` most probable ``(name, probability)`` pairs of one prediction, best first."""
    top = probs.topk(min(k, len(names)))
    return [(names[c], p) for p, c in zip(top.values.tolist(), top.indices.tolist())]


def draw_labels(img, lines: List[str]):
    """uint8 RGB ``[H, W, 3]`` with ``lines`` drawn white on black in its top-left corner."""
    import numpy as np
    from PIL import Image, ImageDraw

    im = Image.fromarray(np.ascontiguousarray(img))
    draw = ImageDraw.Draw(im)
    text = "\n".join(lines)
    box = draw.multiline_textbbox((4, 4), text)
    draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
    draw.multiline_text((4, 4), text, fill=(255, 255, 255))
    return np.asarray(im)


def render_video(source: str, path: str, windows, segs, names: List[str], topk: int = 3) -> int:
    """Decode ``source`` again and write ``path`` (H.264 MP4) with, on each frame, the label of its
    segment and the top-``topk`` of the window centred nearest; returns the frames written."""
    import bisect

    import av

    from ..data.stream import FrameStream

    centres = [w.centre for w in windows]
    tmp = temp_path(path, "render", ".mp4")
    n = 0
    with FrameStream(source) as stream, av.open(tmp, "w") as out:
        rate = stream.stream.average_rate or stream.stream.guessed_rate or 30
        enc = out.add_stream("libx264", rate=rate, options={"crf": "20", "preset": "veryfast"})
        enc.width, enc.height = stream.width - stream.width % 2, stream.height - stream.height % 2
        enc.pix_fmt = "yuv420p"
        for f in stream:
            img = f.array()[:enc.height, :enc.width]
            j = min(max(bisect.bisect_left(centres, f.time), 0), len(centres) - 1)
            if j > 0 and abs(centres[j - 1] - f.time) <= abs(centres[j] - f.time):
                j -= 1
            seg = next((s for s in segs if s["start"] <= f.time < s["end"]), segs[-1])
            top = top_classes(windows[j].probs, names, topk)
            lines = [f"{seg['label']}  (segment)"] + [f"{c} {p:.2f}" for c, p in top]
            frame = av.VideoFrame.from_ndarray(draw_labels(img, lines), format="rgb24")
            for packet in enc.encode(frame):
                out.mux(packet)
            n += 1
        for packet in enc.encode():
            out.mux(packet)
    os.replace(tmp, path)
    return n


def cmd_timeline(args, labels: Optional[List[str]]) -> int:
    from ..data import DecodeError, too_short
    from ..data.stream import FrameStream
    from ..inference.timeline import SEGMENT_FILTER, plan_windows, segments, sliding_windows
    from ._options import load_model, warn_if_untrained

    if not args.out:
        raise UsageError("--timeline writes its files to a directory: add --out DIR")
    prepare_output_dir(args.out)
    if args.batch < 1 or args.topk < 1:
        raise UsageError(f"--batch and --topk must be >= 1, got {args.batch} and {args.topk}")
    video = display_name(args.video)
    try:
        stream = FrameStream(args.video, timeout=args.timeout)  # a bad video fails here, before the model is built
    except DecodeError as e:
        raise UsageError(display_name(str(e))) from None
    with stream:
        if not stream.live and stream.num_frames and too_short(stream.num_frames):
            raise UsageError(f"{video}: {too_short(stream.num_frames)}")
        model, spec, names, device = load_model(args, labels)
        info = spec.info
        warn_if_untrained(spec)
        try:
            plan = plan_windows(info, stream.fps, args.window_sec, args.stride_sec)
            smooth = plan.overlap if args.smooth is None else args.smooth
            min_windows = plan.overlap if args.min_windows is None else args.min_windows
            segments([], smooth=smooth, min_windows=min_windows)
        except ValueError as e:
            raise UsageError(str(e)) from None
        os.makedirs(args.out, exist_ok=True)
        weights = spec.weights_label()
        print(f"{video}: {stream.width}x{stream.height}, {stream.fps:g} fps"
              f"{f', about {stream.num_frames} frames' if stream.num_frames else ''}; {display_name(weights)}")
        print(f"  {plan.describe()}, batches of {args.batch}")
        bar = None
        if not args.no_progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=stream.num_frames or None, unit="frame", desc="timeline", dynamic_ncols=True, leave=False)
        decoded = [0]

        def on_frame(index: int) -> None:
            decoded[0] = index + 1
            if bar is not None:
                bar.update(1)

        start = time.perf_counter()
        windows, failure = [], None
        try:
            for w in sliding_windows(model, stream, plan, info, batch=args.batch, on_frame=on_frame):
                windows.append(w)
        except DecodeError as e:  # a stall or a break mid-way: the windows computed so far are kept
            failure = e
        finally:
            if bar is not None:
                bar.close()
        seconds = time.perf_counter() - start
    if failure is None and too_short(decoded[0]):
        raise UsageError(f"{video}: {too_short(decoded[0])}")
    if not windows:
        raise UsageError(display_name(str(failure)) if failure else f"{video}: no frames decoded")
    topk = min(args.topk, len(names))
    segs = segments(windows, smooth=smooth, min_windows=min_windows)
    for s in segs:
        s["class_index"] = s.pop("label")
        s["label"] = names[s["class_index"]]
    duration = windows[-1].end
    doc = {"source": args.video, "model": spec.name, "weights": weights, "fps": stream.fps,
           "complete": failure is None, **({"stopped": display_name(failure.reason)} if failure else {}),
           "window_sec": round(plan.window_sec, 4), "stride_sec": round(plan.stride_sec, 4),
           "window_frames": plan.window, "stride_frames": plan.stride, "clip_frames": len(plan.clip),
           "window_rule": plan.reason, "views": "1 clip (the model's test sampler over the window) x centre crop",
           "seconds": round(seconds, 2), "realtime_factor": round(duration / seconds, 2) if seconds else None,
           "segment_filter": SEGMENT_FILTER.format(smooth=smooth, min_windows=min_windows),
           "segments": segs,
           "windows": [{"start": round(w.start, 3), "end": round(w.end, 3), "first_frame": w.first_frame,
                        "top": [[names[c], round(p, 4)] for p, c in zip(*(t.tolist() for t in w.probs.topk(topk)))]}
                       for w in windows]}
    paths = write_timeline(args.out, doc, windows, names, topk, args.plot_classes)
    if failure is not None:
        raise UsageError(f"{display_name(str(failure))}; the {len(windows)} windows up to {duration:.2f} s are in "
                         f"{display_name(args.out)} (timeline.json: \"complete\": false)")
    if args.render:
        paths.append(os.path.join(args.out, "timeline.mp4"))
        render_video(args.video, paths[-1], windows, segs, names)
    print(f"  {len(windows)} windows in {seconds:.1f} s ({doc['realtime_factor']}x real time); "
          f"{len(segs)} segment(s):")
    for s in segs:
        print(f"    {s['start']:8.2f} - {s['end']:8.2f} s  {display_name(s['label']):<32s} {s['score']:.3f}")
    print("  wrote " + ", ".join(display_name(p) for p in paths))
    return 0
