"""Videos as phones, re-muxers and networks deliver them: frames are sampled from what a file really
holds (timestamp gaps, a variable frame rate) while truncated files are still refused; every command
agrees on what is too short; timelines keep what they computed when a source stalls, draw any file
name and stay legible with hundreds of segments; ``zoo stream`` gives up on a silent source in one
line and ends cleanly on SIGINT / SIGTERM at any moment. Files and 127.0.0.1 only."""
import http.server
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

import zoo
from zoo.cli import main
from zoo.data import DecodeError, PyAVDecoder, Record, VideoDataset, synth

from test_reliability import REPO, _one_line_error

TINY = ["--model-arg", "backbone=resnet18", "--frames", "4", "--size", "32", "--no-optimize"]


def _write(path, pts, *, codec="mpeg4", time_base=Fraction(1, 25), rate=25, size=32):
    """Frame k is one flat colour (red 16 (k mod 16), green 16 (k div 16): its ordinal reads back through a
    lossy codec) at timestamp pts[k]."""
    with av.open(path, "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        s.codec_context.time_base = time_base
        for k, p in enumerate(pts):
            colour = np.array([16 * (k % 16), 16 * (k // 16), 0], np.uint8)
            f = av.VideoFrame.from_ndarray(np.broadcast_to(colour, (size, size, 3)).copy(), format="rgb24")
            f.pts, f.time_base = p, time_base
            for packet in s.encode(f):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


def _ordinals(frames):
    return [int(round(float(f[..., 0].mean()) / 16)) + 16 * int(round(float(f[..., 1].mean()) / 16)) for f in frames]


def _gapped(path, n=16):
    """A 15 fps source re-muxed on a 25 fps time base: n frames, the container says 26 for 16."""
    return _write(path, [round(k * 25 / 15) for k in range(n)])


# -- frames from what the file holds ---------------------------------------------------------------
def test_a_gapped_avi_decodes_every_slot_with_the_frame_on_screen(tmp_path):
    path = _gapped(str(tmp_path / "gapped.avi"))
    with PyAVDecoder(path) as dec:
        assert dec.meta.num_frames == 26 and dec.meta.fps == 25
        every = _ordinals(dec.get_frames(range(26)))
        # slot i shows the last frame at or before i / 25 s: the frame before a gap fills it
        shown = [max(k for k in range(16) if round(k * 25 / 15) <= i) for i in range(26)]
        assert every == shown and sorted(set(every)) == list(range(16))
        for i in (25, 1, 17, 4):  # one at a time, through seeks: the same frames
            assert _ordinals(dec.get_frames([i])) == [shown[i]]
    # every sampler of the pipeline, training's random ones included
    info = zoo.model_info("tsm_r50").replace(crop_size=32, resize_size=32, train_jitter=(32,))
    for train in (False, True):
        ds = VideoDataset([Record(path=path, label=0)], ["a"], info, train=train)
        assert ds[0]["video"].shape[-3] == 8


def test_a_variable_frame_rate_file_decodes_every_slot(tmp_path):
    """An H.264 MP4 whose frame durations vary (a phone's): every slot of its header count decodes,
    each showing the frame on screen at the slot's time."""
    rng = np.random.default_rng(0)
    pts = np.cumsum([0] + list(rng.choice([1500, 3000, 4500, 9000], size=39))).tolist()  # 1/90000 s
    path = _write(str(tmp_path / "vfr.mp4"), pts, codec="libx264", time_base=Fraction(1, 90000), rate=None)
    with PyAVDecoder(path) as dec:
        n, fps = dec.meta.num_frames, dec.meta.fps
        assert n == 40 and fps != 30
        got = _ordinals(dec.get_frames(range(n)))
        slots = [round(p / 90000 * fps) for p in pts]
        assert got == [max(k for k in range(40) if slots[k] <= i) for i in range(n)]
        assert _ordinals(dec.get_frames([n - 1, 0, n // 2])) == [got[n - 1], got[0], got[n // 2]]


def test_truncated_files_are_still_refused(tmp_path):
    path = _write(str(tmp_path / "long.avi"), [round(k * 25 / 15) for k in range(48)])
    data = open(path, "rb").read()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.8)])
    with PyAVDecoder(str(cut)) as dec, pytest.raises(DecodeError, match="truncated or corrupt: frame 78"):
        dec.get_frames([0, 40, dec.meta.num_frames - 1])


def test_predict_and_eval_take_gapped_videos(tmp_path, capsys):
    videos = [_gapped(str(tmp_path / f"g{k}.avi")) for k in range(2)]
    assert main(["predict", "tsn_r50", videos[0], *TINY, "--views", "1x1"]) == 0
    assert "1. " in capsys.readouterr().out
    (tmp_path / "list.csv").write_text("".join(f"{v},{k}\n" for k, v in enumerate(videos)))
    assert main(["eval", "tsn_r50", "--data", str(tmp_path / "list.csv"), *TINY, "--views", "1x1",
                 "--no-progress"]) == 0
    assert "2 of 2 videos evaluated" in capsys.readouterr().out


# -- what is too short ------------------------------------------------------------------------------
def test_every_command_agrees_on_what_is_too_short(tmp_path, capsys):
    two = str(tmp_path / "two.mp4")
    synth.write_video(two, synth.render_clip("moving_left", np.random.default_rng(0), 32, 2, "easy"), fps=15)
    why = "two.mp4: too short: 2 frames, a clip needs at least 3"
    commands = [["predict", "tsm_r50", two, *TINY],
                ["predict", "tsm_r50", two, *TINY, "--timeline", "--out", str(tmp_path / "tl")],
                ["stream", "tsm_r50", two, *TINY, "--no-pace"],
                ["features", "tsm_r50", two, *TINY, "--out", str(tmp_path / "f.pt")]]
    for argv in commands:
        assert main(argv) == 2, argv
        _one_line_error(capsys, why)
    (tmp_path / "list.csv").write_text(f"{two},0\n")
    assert main(["eval", "tsm_r50", "--data", str(tmp_path / "list.csv"), *TINY, "--no-progress"]) == 2
    _one_line_error(capsys, why)


# -- timelines ---------------------------------------------------------------------------------------
def test_a_file_name_that_is_not_utf8_is_drawn(tmp_path, capsys):
    name = os.fsdecode(b"caf\xe9.mp4")  # Latin-1 bytes: Python keeps them as a lone surrogate
    path = os.path.join(str(tmp_path), name)
    synth.write_video(path, synth.render_clip("moving_left", np.random.default_rng(0), 32, 12, "easy"), fps=12)
    out = str(tmp_path / "tl")
    assert main(["predict", "tsm_r50", path, *TINY, "--timeline", "--out", out, "--no-progress"]) == 0
    assert "caf\ufffd.mp4" in capsys.readouterr().out
    with open(os.path.join(out, "timeline.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert json.load(open(os.path.join(out, "timeline.json")))["source"] == path


def test_hundreds_of_segments_stay_legible():
    """300 segments of 40 classes: labels only where they fit (none overlaps another or leaves its
    span), and a legend names the classes by colour."""
    import matplotlib.pyplot as plt

    from zoo.cli.timeline import timeline_figure
    from zoo.inference.timeline import Window

    names = [f"class number {c}" for c in range(40)]
    g = torch.Generator().manual_seed(0)
    windows = [Window(float(i), float(i + 2), i, torch.rand(40, generator=g).softmax(0)) for i in range(600)]
    spans = [0.0] + sorted(random.Random(0).sample(range(1, 600), 299)) + [601.0]
    spans[-1] = 601.0
    segs = [{"start": float(a), "end": float(b), "class_index": k % 40, "label": names[k % 40], "score": 0.5,
             "windows": 1} for k, (a, b) in enumerate(zip(spans, spans[1:]))]
    segs[0]["end"] = segs[1]["start"] = 120.0  # one wide segment: its label fits
    doc = {"source": "long.mp4", "weights": "w", "window_sec": 2.0, "stride_sec": 1.0, "segments": segs}
    fig = timeline_figure(doc, windows, names, 5)
    try:
        fig.canvas.draw()
        band = fig.axes[1]
        renderer = fig.canvas.get_renderer()
        boxes = [(t.get_window_extent(renderer), t.get_position()[0]) for t in band.texts]
        assert 1 <= len(boxes) < 100
        for k, (box, _) in enumerate(boxes):
            assert not any(box.overlaps(other) for other, _ in boxes[k + 1:])
        for box, centre in boxes:
            seg = next(s for s in segs if s["start"] < centre < s["end"])
            left, right = band.transData.transform([(seg["start"], 0), (seg["end"], 0)])[:, 0]
            assert left <= box.x0 and box.x1 <= right
        legend = [t.get_text() for t in band.get_legend().get_texts()]
        assert len(legend) <= 21 and "other classes" in legend and names[0] in legend
    finally:
        plt.close(fig)


def _stalling_server(data: bytes):
    """A loopback HTTP source that sends ``data``'s first 40 % and then nothing (connection open)."""
    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) * 2 // 5])
            self.wfile.flush()
            release.wait(60)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, release, f"http://127.0.0.1:{httpd.server_address[1]}/clip.ts"


@pytest.fixture(scope="module")
def ts_data(tmp_path_factory):
    """6 s of 15 fps video in MPEG-TS (streamable: decodable from its first bytes)."""
    path = str(tmp_path_factory.mktemp("ts") / "clip.ts")
    synth.write_video(path, synth.render_clip("moving_right", np.random.default_rng(1), 32, 90, "easy"), fps=15)
    return open(path, "rb").read()


def test_a_stalled_timeline_keeps_its_windows(ts_data, tmp_path, capsys):
    httpd, release, url = _stalling_server(ts_data)
    out = str(tmp_path / "tl")
    try:
        assert main(["predict", "tsm_r50", url, *TINY, "--timeline", "--out", out, "--window-sec", "0.5",
                     "--stride-sec", "0.5", "--timeout", "1", "--no-progress"]) == 2
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()
    err = _one_line_error(capsys, "stalled: no data for 1 s", "(timeline.json: \"complete\": false)")
    doc = json.load(open(os.path.join(out, "timeline.json")))
    assert doc["complete"] is False and "stalled" in doc["stopped"] and len(doc["windows"]) >= 2
    assert f"the {len(doc['windows'])} windows up to" in err
    assert len(open(os.path.join(out, "timeline.csv")).read().splitlines()) == len(doc["windows"]) + 1


# -- zoo stream ---------------------------------------------------------------------------------------
def test_stream_gives_up_on_a_silent_or_stalled_source_in_one_line(ts_data, tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        url = f"http://127.0.0.1:{s.getsockname()[1]}/live.ts"
        assert main(["stream", "tsm_r50", url, "--timeout", "1"]) == 2
    err = _one_line_error(capsys, url, "no answer within 1 s", "--timeout 1")
    assert "ExitError" not in err and "Immediate exit" not in err
    httpd, release, url = _stalling_server(ts_data)
    out = str(tmp_path / "p.jsonl")
    try:
        assert main(["stream", "tsm_r50", url, *TINY, "--model-arg", "online=true", "--timeout", "1",
                     "--out", out]) == 2
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()
    err = _one_line_error(capsys, "stalled: no data for 1 s")
    lines = [json.loads(line) for line in open(out)]
    assert lines and f"the {len(lines)} predictions before it are in {out}" in err


def _catches_sigterm(pid) -> bool:
    """Whether process ``pid`` has a SIGTERM handler installed (``SigCgt`` of /proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(mask >> (signal.SIGTERM - 1) & 1)


@pytest.mark.slow
def test_stream_ends_cleanly_on_sigint_and_sigterm_at_any_moment(tmp_path):
    """Signalled at random moments (building the model, streaming, near the end): exit 130 (or 0 when
    it had finished), no traceback, every JSON line whole, the render playable, no temporary file."""
    video = str(tmp_path / "clip.mp4")
    synth.write_video(video, synth.render_clip("moving_right", np.random.default_rng(3), 32, 45, "easy"), fps=15)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rng = random.Random(31)
    for trial, sig in enumerate([signal.SIGINT, signal.SIGTERM, signal.SIGINT, signal.SIGTERM]):
        out, render = str(tmp_path / f"p{trial}.jsonl"), str(tmp_path / f"r{trial}.mp4")
        child = subprocess.Popen([sys.executable, "-m", "zoo", "stream", "tsm_r50", video, *TINY, "--model-arg",
                                  "online=true", "--out", out, "--render", render], env=env, cwd=str(tmp_path),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while child.poll() is None and not _catches_sigterm(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)  # the command has begun (Python's own start-up is not zoo's to handle)
        if trial >= 2:  # once the predictions run: the reader thread, the model and the writers all busy
            while child.poll() is None and "t=" not in child.stdout.readline() and time.monotonic() < deadline:
                pass
        time.sleep(rng.uniform(0.0, 2.0))
        child.send_signal(sig)
        stdout, stderr = child.communicate(timeout=120)
        assert child.returncode in (130, 0), (sig, child.returncode, stderr[-2000:])
        assert "Traceback" not in stderr and "Segmentation" not in stderr, stderr[-2000:]
        if child.returncode == 130:
            assert stderr.strip().splitlines()[-1] == "interrupted"
        if os.path.exists(out):
            [json.loads(line) for line in open(out)]
        if os.path.exists(render):
            with av.open(render) as c:
                assert sum(1 for _ in c.decode(video=0)) >= 1
        assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]
