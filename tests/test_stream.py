"""Live streams (`zoo.inference.live`, ``zoo stream``): online TSM frame by frame, sliding windows,
dropping instead of lagging, loopback HTTP sources. Files and 127.0.0.1 only, never a camera."""
import functools
import http.server
import json
import threading
import time

import numpy as np
import pytest
import torch

import zoo
from zoo.cli import main
from zoo.data import synth
from zoo.data.stream import FrameStream, is_live_source
from zoo.inference.live import LiveRunner, is_online
from zoo.inference.timeline import plan_windows, sliding_windows


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """2 s at 15 fps, 32 px."""
    path = str(tmp_path_factory.mktemp("live") / "clip.mp4")
    clip = synth.render_clip("moving_right", np.random.default_rng(3), 32, 30, "easy")
    synth.write_video(path, clip, fps=15)
    return path


def _info(model):
    return model.info.replace(crop_size=32, resize_size=32)


def test_online_tsm_streams_every_frame_with_the_offline_consensus(video):
    """Every frame gets a prediction (the source held back, not dropping), and each is the softmax
    of the per-frame logits of the offline online-model, averaged over the last T frames."""
    torch.manual_seed(0)
    model = zoo.build("tsm_r50", backbone="resnet18", num_segments=4, num_classes=5, online=True).eval()
    assert is_online(model) and not is_online(zoo.build("tsm_r50", backbone="resnet18", num_classes=5))
    info = _info(model)
    runner = LiveRunner(model, info)
    with FrameStream(video) as stream:
        got = list(runner.run(stream, pace=False, drop=False))
    assert runner.mode == "online" and [p.frame_index for p in got] == list(range(30))
    assert all(p.dropped == 0 for p in got)
    # offline: the same 30 frames as one clip of the online model, per-frame logits
    from zoo.data import Record, VideoDataset
    clip = VideoDataset([Record(path=video, label=None)], list("abcde"), info.replace(num_frames=30, num_segments=30),
                        train=False, views=(1, 1))[0]["video"]
    offline = zoo.build("tsm_r50", backbone="resnet18", num_segments=30, num_classes=5, online=True).eval()
    offline.load_state_dict(model.state_dict())
    with torch.no_grad():
        frame_logits = offline.fc(offline.forward_features(clip))[0]  # [30, 5]
    for p in got:
        t = p.frame_index
        expect = frame_logits[max(0, t - 3):t + 1].mean(0).softmax(-1)
        torch.testing.assert_close(p.probs, expect, rtol=1e-4, atol=1e-5)
    # the fp32 fast path streams the same (its optimized copy, frame by frame, channels-last)
    with FrameStream(video) as stream:
        fast = list(LiveRunner(zoo.optimize(model), info).run(stream, pace=False, drop=False))
    torch.testing.assert_close(torch.stack([p.probs for p in fast]), torch.stack([p.probs for p in got]),
                               rtol=1e-4, atol=1e-5)


class _Slow(torch.nn.Module):
    """A model that takes ``seconds`` per call."""

    def __init__(self, model, seconds):
        super().__init__()
        self.model, self.seconds, self.calls = model, seconds, []

    def forward(self, x):
        start = time.perf_counter()
        time.sleep(self.seconds)
        out = self.model(x)
        self.calls.append(time.perf_counter() - start)
        return out


def test_a_slow_model_drops_windows_instead_of_lagging(video):
    """Sliding windows: held back, every window runs and equals the timeline's; in real time, a
    model slower than the stride skips windows (counted) and its latency stays one call."""
    torch.manual_seed(0)
    model = zoo.build("r2plus1d_18", num_classes=5).eval()
    info = _info(model).replace(num_frames=4, sampling_rate=2)
    with FrameStream(video) as stream:
        plan = plan_windows(info, stream.fps, stride_sec=2 / 15)  # 8-frame windows, every 2 frames
        got = list(LiveRunner(model, info, plan).run(stream, pace=False, drop=False))
    with FrameStream(video) as stream:
        offline = list(sliding_windows(model, stream, plan, info))
    assert [p.frame_index for p in got] == [w.first_frame + plan.window - 1 for w in offline] == list(range(7, 30, 2))
    torch.testing.assert_close(torch.stack([p.probs for p in got]), torch.stack([w.probs for w in offline]),
                               rtol=1e-4, atol=1e-6)
    start = time.perf_counter()
    slow_model = _Slow(model, 0.3)
    with FrameStream(video) as stream:
        slow = list(LiveRunner(slow_model, info, plan).run(stream))
    wall = time.perf_counter() - start
    assert slow[-1].dropped > 0 and len(slow) + slow[-1].dropped <= len(got)
    call = max(slow_model.calls)
    assert wall < 2.0 + call + 1.0  # the source's 2 s, one call, slack: not 12 windows one after another
    # a prediction comes one call (plus a frame's wait and slack) after its newest frame, never a queue
    # (but the last: once the source has ended, its last window may have waited for a call)
    assert all(p.latency < call + 2 / 15 + 0.1 for p in slow[:-1]), ([round(p.latency, 3) for p in slow], call)


@pytest.fixture
def http_video(video):
    """``video`` served over HTTP on 127.0.0.1."""
    import os
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=os.path.dirname(video))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{os.path.basename(video)}"
    server.shutdown()


def test_stream_cli_on_a_loopback_http_source(http_video, tmp_path, capsys):
    assert is_live_source(http_video)
    out, render = str(tmp_path / "p.jsonl"), str(tmp_path / "seen.mp4")
    assert main(["stream", "tsm_r50", http_video, "--model-arg", "online=true", "--model-arg", "backbone=resnet18",
                 "--frames", "4", "--size", "32", "--out", out, "--render", render, "--topk", "2"]) == 0
    printed = capsys.readouterr().out
    assert "tsm_r50 online: one frame per prediction, the past carried in the model's stream state" in printed
    lines = [json.loads(line) for line in open(out)]
    assert lines and len(lines[0]["top"]) == 2 and [x["frame"] for x in lines] == sorted({x["frame"] for x in lines})
    assert f"{len(lines)} predictions in" in printed and f"{lines[-1]['dropped']} frames dropped to keep up" in printed
    with FrameStream(render) as seen:
        assert sum(1 for _ in seen) == len(lines)


def test_stream_errors_are_one_line(tmp_path, capsys, video):
    import socket
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["stream", "tsm_r50", f"http://127.0.0.1:{port}/none.mp4", "--timeout", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot open" in err and "rtsp://" in err
    assert main(["stream", "tsm_r50", str(tmp_path / "missing.mp4")]) == 2
    assert "file not found" in capsys.readouterr().err
    env_display = {k: None for k in ("DISPLAY", "WAYLAND_DISPLAY")}
    import os
    saved = {k: os.environ.pop(k) for k in env_display if k in os.environ}
    try:
        assert main(["stream", "tsm_r50", video, "--show", "--frames", "4", "--size", "32",
                     "--model-arg", "backbone=resnet18"]) == 2
        assert "--show needs a display" in capsys.readouterr().err
    finally:
        os.environ.update(saved)


@pytest.mark.slow
def test_stream_benchmark_rows_resume_and_memory(tmp_path, monkeypatch, capsys):
    """the streaming benchmark end to end on a 2 s video: a sliding row per model, online rows (fp32,
    bf16) for a model with an online form, a 1080p memory row; a second run measures nothing, a run of
    another model keeps the first one's rows."""
    from zoo.benchmark import stream as bench

    monkeypatch.setattr(bench, "VIDEO", {"seconds": 2, "fps": 15, "width": 64, "height": 48})
    monkeypatch.setattr(bench, "MEMORY_VIDEOS", {"short": 1})
    results = str(tmp_path / "stream.json")
    doc = bench.run_stream(results, out_dir=str(tmp_path / "videos"), models=["tsm_r50"], threads=1)
    rows = {(r["mode"], r["dtype"]): r for r in doc["rows"]}
    assert set(rows) == {("sliding", "fp32"), ("online", "fp32"), ("online", "bf16")}
    assert rows[("online", "fp32")]["predictions"] == 30 and rows[("sliding", "fp32")]["predictions"] == 1
    for r in rows.values():
        assert r["realtime_factor"] == pytest.approx(r["frames_per_s"] / 15, rel=0.01, abs=1e-3)  # both rounded
        assert r["measured_by"]["machine"]["threads"] == 1
    # the run's peaks, and each online row's GMAC/s against those of its dtype
    peaks = doc["peaks"]
    assert peaks["threads"] == 1 and all(peaks[k][d] > 0 for k in ("matmul", "conv") for d in ("fp32", "bf16", "int8"))
    assert peaks["kernels"]["matmul"]["bf16"] == "torch.mm" and "quantized Conv2d" in peaks["kernels"]["conv"]["int8"]
    for dtype in ("fp32", "bf16"):
        r = rows[("online", dtype)]
        assert r["gmacs_per_frame"] == pytest.approx(zoo.model_info("tsm_r50").ref_gflops / 8, rel=0.02)
        assert r["gmacs_per_s"] == pytest.approx(r["gmacs_per_frame"] * r["frames_per_s"], rel=0.01)
        assert r["peaks_gmacs"] == {"matmul": peaks["matmul"][dtype], "conv": peaks["conv"][dtype]}
        assert r["fraction"]["of_conv_peak"] == pytest.approx(r["gmacs_per_s"] / peaks["conv"][dtype], abs=1e-3)
    assert "gmacs_per_s" not in rows[("sliding", "fp32")]
    assert [m["video"] for m in doc["memory"]] == ["1920x1080, 30 fps, 1 s"] and doc["memory"][0]["peak_rss_mib"] > 100
    capsys.readouterr()
    again = bench.run_stream(results, out_dir=str(tmp_path / "videos"), models=["tsm_r50"], threads=1)
    assert "0 of 3 row(s) to measure" in capsys.readouterr().out and again["rows"] == doc["rows"]
    # a run of another model adds its row and keeps the others
    more = bench.run_stream(results, out_dir=str(tmp_path / "videos"), models=["tsn_r50"], threads=1)
    assert "1 of 1 row(s) to measure" in capsys.readouterr().out
    assert more["rows"][:3] == doc["rows"] and [r["model"] for r in more["rows"][3:]] == ["tsn_r50"]


def test_online_agreement_compares_every_frame_with_the_offline_clip(video, tmp_path, monkeypatch):
    """The online form run frame by frame against the fp32 offline model on the clip of the last T
    frames: from the T-th frame on, each frame is one comparison; the first window is the offline
    clip exactly (the stream starts from zeros as the clip does), so fp32 agrees on it."""
    from zoo.benchmark import stream as bench
    from zoo.engine.training import FINAL_WEIGHTS
    from zoo.benchmark.latency import randomize_bn_stats

    torch.manual_seed(0)
    model = randomize_bn_stats(zoo.build(zoo.resolve("tsm_r50", frames=4, size=32, num_classes=5,
                                                     backbone="resnet18", online=True))).eval()
    first = str(tmp_path / "first4.mp4")
    synth.write_video(first, synth.render_clip("moving_left", np.random.default_rng(4), 32, 4, "easy"), fps=15)
    one = bench.online_agreement(model, [first])
    assert one["frames_compared"] == 1 and one["fp32_top1_agreement"] == 1.0 and one["bf16_top1_agreement"] in (0, 1)
    both = bench.online_agreement(model, [first, video])
    assert both["videos"] == 2 and both["frames_compared"] == 1 + 30 - 4 + 1
    assert 0 <= both["bf16_top1_agreement"] <= 1 and both["fp32_top1_agreement"] > 0.5
    assert 0.5 < both["bf16_vs_fp32_stream_top1_agreement"] <= 1
    # the online bench network: weights an earlier run saved are loaded, not trained again
    (tmp_path / "bench" / "data").mkdir(parents=True)
    (tmp_path / "bench" / "data" / "classes.json").write_text(json.dumps({"classes": list("abcde")}))
    net = zoo.build(zoo.resolve("tsm_r50", frames=8, size=32, num_classes=5, backbone="resnet18", online=True))
    (tmp_path / "bench" / "online" / "tsm_r50").mkdir(parents=True)
    torch.save(net.state_dict(), tmp_path / "bench" / "online" / "tsm_r50" / FINAL_WEIGHTS)
    monkeypatch.setattr("zoo.engine.train", lambda cfg: pytest.fail("trained again"))
    got = bench.online_bench("tsm_r50", str(tmp_path / "bench"), epochs=1)
    assert got.online and not got.training and got.info.crop_size == 32
    torch.testing.assert_close(got.state_dict(), net.state_dict())
