"""Sliding-window timelines (`zoo.inference.timeline`, ``zoo predict --timeline``): window plans,
exactness against the offline pipeline, one decoding pass with memory bounded by a window, the
segment filter, and the files the CLI writes."""
import json
import os
import weakref

import numpy as np
import pytest
import torch

import zoo
from zoo.cli import main
from zoo.data import synth
from zoo.data.stream import FrameStream, is_live_source
from zoo.inference import timeline
from zoo.inference.timeline import Window, plan_windows, segments, sliding_windows

SMALL_TSM = ["--frames", "4", "--size", "32", "--model-arg", "backbone=resnet18"]


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """60 frames at 15 fps, 32 px: four 15-frame clips of different classes."""
    path = str(tmp_path_factory.mktemp("tl") / "four.mp4")
    order = ["moving_right", "moving_down", "growing", "moving_up"]
    clips = [synth.render_clip(c, np.random.default_rng([5, k]), 32, 15, "easy") for k, c in enumerate(order)]
    synth.write_video(path, np.concatenate(clips), fps=15)
    return path


def test_window_plans_follow_the_protocol():
    dense = zoo.model_info("slowfast_8x8_r50")
    plan = plan_windows(dense, 30.0)
    assert plan.window == dense.num_frames * dense.sampling_rate == 64 and plan.stride == 30
    assert len(plan.clip) == 32 and plan.clip[0] == 0 and plan.clip[-1] == 63  # the clip spans the window
    seg = zoo.model_info("tsn_r50")
    plan = plan_windows(seg, 25.0, stride_sec=0.5)
    assert plan.window == 250 and plan.stride == 12  # Kinetics: 10 s clips; round(12.5)
    assert "kinetics400" in plan.reason and len(plan.clip) == 8 and plan.overlap == 21
    assert plan_windows(zoo.model_info("tsm_r50"), 25.0).window == 100  # its default weights: SSv2, ~4 s
    assert plan_windows(seg, 30.0, window_sec=2.0, stride_sec=5.0).stride == 60  # at most one window
    unknown = plan_windows(seg.replace(dataset="my-clips"), 30.0)
    assert unknown.window == 300 and "--window-sec" in unknown.reason
    with pytest.raises(ValueError, match="must be > 0"):
        plan_windows(seg, 30.0, window_sec=0)
    # every frame some window samples, and no other after the first window
    sampled = [i for i in range(400) if plan.sampled(i)]
    expect = sorted({k * plan.stride + o for k in range(400) for o in plan.clip} | set(range(plan.window)))
    assert sampled == [i for i in expect if i < 400]


def _tiny_tsm():
    torch.manual_seed(0)
    return zoo.build("tsm_r50", backbone="resnet18", num_segments=4, num_classes=5).eval()


def test_a_window_over_a_whole_clip_is_the_offline_prediction(tmp_path):
    """One window spanning the video = `zoo predict`'s pipeline with one view (same frames, same
    resize and crop, same logits), for a segment model and a dense one."""
    from zoo.data import Record, VideoDataset

    clip = synth.render_clip("moving_left", np.random.default_rng(1), 48, 24)
    path = str(tmp_path / "v.mp4")
    synth.write_video(path, clip, fps=12)
    for name, args in (("tsm_r50", {"backbone": "resnet18"}), ("r2plus1d_18", {})):
        spec = zoo.resolve(name, frames=4 if name == "tsm_r50" else 8, size=32, num_classes=5, **args)
        info = spec.info
        torch.manual_seed(0)
        model = zoo.build(spec).eval()
        offline = VideoDataset([Record(path=path, label=None)], [str(i) for i in range(5)], info, train=False,
                               views=(1, 1))[0]["video"]
        with torch.inference_mode():
            expect = model(offline).softmax(-1)[0]
        with FrameStream(path) as stream:
            plan = plan_windows(info, stream.fps, window_sec=24 / 12)
            (window,) = list(sliding_windows(model, stream, plan, info))
        assert window.start == 0 and window.end == pytest.approx(2.0) and window.first_frame == 0
        torch.testing.assert_close(window.probs, expect, rtol=1e-5, atol=1e-6)


def test_one_decoding_pass_and_memory_bounded_by_a_window(long_video, monkeypatch):
    """Each frame is decoded once, only sampled frames are converted, and no more than one window's
    frames are held at a time, however long the video; windows come in order, batched."""
    info = zoo.model_info("tsm_r50").replace(num_frames=4, num_segments=4, crop_size=32, resize_size=32)
    model = _tiny_tsm()
    alive, most, resized = set(), [0], [0]
    original = timeline.resize_frame

    def counting_resize(frame, size):
        out = original(frame, size)
        key = resized[0] = resized[0] + 1
        alive.add(key)
        weakref.finalize(out, alive.discard, key)
        most[0] = max(most[0], len(alive))
        return out
    monkeypatch.setattr(timeline, "resize_frame", counting_resize)
    decoded = []
    with FrameStream(long_video) as stream:
        assert stream.num_frames == 60 and stream.fps == 15 and not is_live_source(long_video)
        plan = plan_windows(info, stream.fps, window_sec=1.0, stride_sec=0.4)  # 15 frames, stride 6
        frames = (decoded.append(f.index) or f for f in stream)
        windows = list(sliding_windows(model, frames, plan, info, batch=3))
    assert decoded == list(range(60))
    assert resized[0] == sum(plan.sampled(i) for i in range(60)) < 60
    assert most[0] <= plan.window  # + nothing: earlier windows' frames are gone
    assert plan.clip == (1, 5, 9, 13)
    assert [w.first_frame for w in windows] == list(range(0, 60 - 15 + 1, 6)) == \
        list(range(0, timeline.expected_windows(60, plan) * 6, 6))
    assert all(w.end - w.start == pytest.approx(1.0) for w in windows)
    # the batch size does not change a window's result
    with FrameStream(long_video) as stream:
        one = list(sliding_windows(model, stream, plan, info, batch=1))
    torch.testing.assert_close(torch.stack([w.probs for w in one]), torch.stack([w.probs for w in windows]),
                               rtol=1e-4, atol=1e-6)


def test_a_video_shorter_than_a_window_gets_one_window(long_video):
    info = zoo.model_info("tsm_r50").replace(num_frames=4, num_segments=4, crop_size=32, resize_size=32)
    with FrameStream(long_video) as stream:
        plan = plan_windows(info, stream.fps, window_sec=10.0)
        (window,) = list(sliding_windows(_tiny_tsm(), stream, plan, info))
    assert window.start == 0 and window.end == pytest.approx(4.0)


def _windows(labels, probs=0.8, classes=3):
    out = []
    for i, c in enumerate(labels):
        p = torch.full((classes,), (1 - probs) / (classes - 1))
        p[c] = probs
        out.append(Window(start=float(i), end=float(i) + 4, first_frame=i, probs=p))
    return out


def test_segments_merge_runs_and_absorb_short_blips():
    labels = [0] * 6 + [2] + [0] * 3 + [1] * 8
    segs = segments(_windows(labels), smooth=1, min_windows=2)
    assert [(s["label"], s["windows"]) for s in segs] == [(0, 10), (1, 8)]  # the one-window blip joins class 0
    # boundaries midway between the centres either side of a change; the ends are the windows' ends
    assert segs[0]["start"] == 0 and segs[0]["end"] == pytest.approx(0.5 * (11 + 12))  # centres i + 2
    assert segs[1]["end"] == 17 + 4 and segs[0]["score"] == pytest.approx((9 * 0.8 + 0.1) / 10)
    # without the filter every run is a segment
    assert len(segments(_windows(labels), smooth=1, min_windows=1)) == 4
    # smoothing: an isolated confident window cannot outvote its neighbours
    assert [s["label"] for s in segments(_windows(labels), smooth=3, min_windows=1)] == [0, 1]
    assert segments([], smooth=3) == []
    with pytest.raises(ValueError, match="--smooth"):
        segments(_windows(labels), smooth=0)


def test_timeline_cli_writes_csv_json_png_and_video(long_video, tmp_path, capsys):
    out = str(tmp_path / "tl")
    assert main(["predict", "tsm_r50", long_video, "--timeline", "--out", out, *SMALL_TSM, "--window-sec", "1",
                 "--stride-sec", "0.4", "--topk", "3", "--render", "--no-progress", "--no-optimize"]) == 0
    printed = capsys.readouterr().out
    assert "window 1.00 s (15 frames at 15 fps; --window-sec), stride 0.40 s" in printed
    doc = json.load(open(os.path.join(out, "timeline.json")))
    assert doc["window_frames"] == 15 and doc["stride_frames"] == 6 and len(doc["windows"]) == 8
    assert doc["segments"] and doc["segments"][0]["start"] == 0 and doc["segments"][-1]["end"] == doc["windows"][-1]["end"]
    assert "averaged over 3 consecutive windows" in doc["segment_filter"]  # window / stride, rounded up
    rows = open(os.path.join(out, "timeline.csv")).read().splitlines()
    assert rows[0] == "start,end,first_frame,label_1,prob_1,label_2,prob_2,label_3,prob_3" and len(rows) == 9
    assert rows[1].split(",")[3] == doc["windows"][0]["top"][0][0]
    with open(os.path.join(out, "timeline.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with FrameStream(os.path.join(out, "timeline.mp4")) as rendered:
        assert sum(1 for _ in rendered) == 60 and rendered.width == 32
    assert not [f for f in os.listdir(out) if ".tmp" in f]


def test_timeline_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    assert main(["predict", "tsm_r50", str(bad), "--timeline", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "broken.mp4: cannot open" in err
    assert main(["predict", "tsm_r50", str(bad), "--timeline"]) == 2
    assert "add --out DIR" in capsys.readouterr().err
    assert main(["predict", "tsm_r50", str(tmp_path / "missing.mp4"), "--timeline", "--out", "o"]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["predict", "tsm_r50", str(tmp_path), "--timeline", "--out", "o"]) == 2
    assert "a directory: streams are read from a video file" in capsys.readouterr().err
