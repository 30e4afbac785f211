"""``zoo stream NAME SOURCE``: live top-k from a webcam, an RTSP / HTTP stream or a file played in
real time, never lagging the source (`zoo.inference.live`)."""
from __future__ import annotations

import json
import os
import time

from .._files import display_name, prepare_output_file, temp_path
from . import UsageError
from ._options import add_model_options, parse_kv

__all__ = ["register"]


class _Overlay:
    """--render: the frames the model saw, with the current top-k drawn, at their source times."""

    def __init__(self, path: str):
        import av
        self.path, self.tmp = path, temp_path(path, "render", ".mp4")
        self.container = av.open(self.tmp, "w")
        self.stream = None
        self.last_pts = -1

    def write(self, frame_chw, t: float, lines) -> None:
        from fractions import Fraction

        import av

        from .timeline import draw_labels

        img = frame_chw.permute(1, 2, 0).numpy()
        h, w = img.shape[0] - img.shape[0] % 2, img.shape[1] - img.shape[1] % 2
        if self.stream is None:
            self.stream = self.container.add_stream("libx264", rate=30, options={"crf": "20", "preset": "veryfast"})
            self.stream.width, self.stream.height, self.stream.pix_fmt = w, h, "yuv420p"
            self.stream.codec_context.time_base = Fraction(1, 1000)
        frame = av.VideoFrame.from_ndarray(draw_labels(img[:h, :w], lines), format="rgb24")
        frame.pts = max(self.last_pts + 1, int(round(t * 1000)))  # variable frame rate: one per prediction
        frame.time_base = Fraction(1, 1000)
        self.last_pts = frame.pts
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        if self.stream is not None:
            for packet in self.stream.encode():
                self.container.mux(packet)
        self.container.close()
        if self.stream is not None:
            os.replace(self.tmp, self.path)
        elif os.path.exists(self.tmp):
            os.remove(self.tmp)


class _Window:
    """--show: a matplotlib window updated with each shown prediction."""

    def __init__(self):
        import matplotlib
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") and os.name != "nt":
            raise UsageError("--show needs a display (no DISPLAY here): use --render FILE.mp4 instead")
        import matplotlib.pyplot as plt
        matplotlib.interactive(True)
        self.plt, self.image = plt, None

    def write(self, frame_chw, t, lines):
        img = frame_chw.permute(1, 2, 0).numpy()
        if self.image is None:
            self.image = self.plt.imshow(img)
            self.text = self.plt.gca().text(4, 4, "", va="top", color="white", backgroundcolor="black", fontsize=8)
            self.plt.axis("off")
        self.image.set_data(img)
        self.text.set_text("\n".join(lines))
        self.plt.pause(0.001)

    def close(self):
        self.plt.close("all")


def cmd_stream(args) -> int:
    from ..data import DecodeError, too_short
    from ..data.stream import FrameStream
    from ..inference.live import LiveRunner, is_online
    from ..inference.timeline import plan_windows
    from ._options import load_model, warn_if_untrained
    from .timeline import top_classes

    if args.topk < 1:
        raise UsageError(f"--topk must be >= 1, got {args.topk}")
    for flag, path in (("--out", args.out), ("--render", args.render)):
        if path:
            prepare_output_file(path, flag)
    try:
        options = {k: str(v) for k, v in parse_kv(args.input_option, "--input-option").items()}
        source = FrameStream(args.source, format=args.input_format, options=options, timeout=args.timeout)
    except DecodeError as e:
        hint = f" (--timeout {args.timeout:g})" if "no answer within" in e.reason else \
            " (a file, rtsp:// or http:// URL, /dev/videoN or FORMAT:DEVICE)"
        raise UsageError(display_name(str(e)) + hint) from None
    outputs = []
    with source:  # closed only after the reader thread has ended (LiveRunner.run joins it)
        if not source.live and source.num_frames and too_short(source.num_frames):
            raise UsageError(f"{display_name(args.source)}: {too_short(source.num_frames)}")
        model, spec, names, device = load_model(args, None)
        info = spec.info
        warn_if_untrained(spec)
        try:
            plan = None if is_online(model) else plan_windows(info, source.fps, args.window_sec, args.stride_sec)
        except ValueError as e:
            raise UsageError(str(e)) from None
        runner = LiveRunner(model, info, plan)
        log_tmp = temp_path(args.out, "log") if args.out else None
        log = None
        start, shown, n, latencies, last = time.perf_counter(), -1.0, 0, [], None
        predictions = runner.run(source, pace=not args.no_pace)
        try:
            log = open(log_tmp, "w") if args.out else None
            if args.render:
                outputs.append(_Overlay(args.render))
            if args.show:
                outputs.append(_Window())
            print(f"{display_name(args.source)}: {source.width}x{source.height} at {source.fps:g} fps; {spec.name} "
                  f"{runner.mode}: {runner.cost()}")
            start = time.perf_counter()
            for p in predictions:
                n, last = n + 1, p
                latencies.append(p.latency)
                wall = time.perf_counter() - start
                pairs = top_classes(p.probs, names, args.topk)
                if log is not None:
                    log.write(json.dumps({"frame": p.frame_index, "time": round(p.time, 3), "wall": round(wall, 3),
                                          "latency_ms": round(1e3 * p.latency, 1), "dropped": p.dropped,
                                          "top": [[c, round(v, 4)] for c, v in pairs]}) + "\n")
                lines = [f"{c} {v:.2f}" for c, v in pairs] + [f"{1e3 * p.latency:.0f} ms, {n / max(wall, 1e-9):.1f}/s, "
                                                              f"dropped {p.dropped}"]
                for out in outputs:
                    out.write(runner.last_frame, p.time, lines)
                if wall - shown >= args.print_every:
                    shown = wall
                    print(f"  t={p.time:7.2f}s  " + "  ".join(f"{c} {v:.2f}" for c, v in pairs[:3]) +
                          f"  | {1e3 * p.latency:.0f} ms, {n / max(wall, 1e-9):.1f} predictions/s, dropped {p.dropped}",
                          flush=True)
                if args.seconds and wall >= args.seconds:
                    break
        except DecodeError as e:  # the predictions made so far are in --out / --render
            raise UsageError(display_name(str(e)) + (f"; the {n} predictions before it are in {args.out}"
                                                     if args.out and n else "")) from None
        finally:  # also on Ctrl-C / SIGTERM: the reader is joined, then every output is flushed and put in place
            predictions.close()
            for out in outputs:
                out.close()
            if log is not None:
                log.close()
                os.replace(log_tmp, args.out)
    wall = time.perf_counter() - start
    if not n:
        print(f"no prediction: the source ended before {'a frame' if plan is None else f'one window ({plan.window} frames)'}")
        return 0
    lat = sorted(latencies)
    what = "frames" if runner.online else "windows"
    print(f"{n} predictions in {wall:.1f} s ({n / wall:.1f}/s) up to t={last.time:.2f} s; latency median "
          f"{1e3 * lat[len(lat) // 2]:.0f} ms, p95 {1e3 * lat[int(0.95 * (len(lat) - 1))]:.0f} ms; {last.dropped} "
          f"{what} dropped to keep up" + (f"; wrote {args.out}" if args.out else "") +
          (f", {args.render}" if args.render else ""))
    return 0


def register(sub):
    p = sub.add_parser("stream", help="live top-k on a webcam, RTSP/HTTP stream or a file played in real time",
                       description="Classify SOURCE live: an online model (e.g. --model-arg online=true for TSM) "
                                   "predicts every frame it can at one frame's cost; other models classify a "
                                   "sliding window over the last frames. When the model is slower than the "
                                   "source, frames (or windows) are dropped, never queued: the output never lags.")
    p.add_argument("model", nargs="?", help="registered model name (or --run-dir DIR)")
    p.add_argument("source", help="a video file (played in real time), rtsp:// or http:// URL, /dev/videoN, or "
                                  "FORMAT:DEVICE for an FFmpeg input device (avfoundation:0, dshow:video=NAME)")
    add_model_options(p, views=False)
    g = p.add_argument_group("stream")
    g.add_argument("--window-sec", type=float, metavar="W", help="sliding models: window length (default: one clip)")
    g.add_argument("--stride-sec", type=float, metavar="S", help="sliding models: seconds between predictions (default 1)")
    g.add_argument("--topk", type=int, default=5, help="labels per prediction (default 5)")
    g.add_argument("--print-every", type=float, default=0.5, metavar="SEC", help="print at most every SEC (default 0.5)")
    g.add_argument("--out", metavar="FILE", help="write every prediction as a JSON line")
    g.add_argument("--render", metavar="FILE.mp4", help="write the frames the model saw with the labels drawn")
    g.add_argument("--show", action="store_true", help="show them in a window (needs a display)")
    g.add_argument("--seconds", type=float, help="stop after this many seconds")
    g.add_argument("--no-pace", action="store_true",
                   help="read a file as fast as it decodes instead of in real time (throughput tests)")
    g.add_argument("--input-format", metavar="FMT", help="FFmpeg input format (e.g. v4l2, rtsp); default: guessed")
    g.add_argument("--input-option", action="append", metavar="K=V",
                   help="FFmpeg input option (repeatable), e.g. rtsp_transport=tcp, video_size=640x480")
    g.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a network source (default 10)")
    p.set_defaults(func=cmd_stream, interruptible=True)
