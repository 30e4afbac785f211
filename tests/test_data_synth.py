"""SynthMotion generator (determinism, twin construction, metadata) and the `zoo synth` /
`zoo check-data` commands."""
import csv
import json
import os

import numpy as np
import pytest

from zoo.cli import main
from zoo.data import PyAVDecoder, build_dataset, synth
from zoo.data.check import check_dataset
from zoo.data.labels import label_map_hash
from zoo.models import ModelInfo


def test_class_set():
    assert len(synth.CLASSES) >= 12 and len(set(synth.CLASSES)) == len(synth.CLASSES)
    paired = {c for pair in synth.TWINS for c in pair}
    assert len(paired) >= 0.75 * len(synth.CLASSES)  # most classes have a time-reversed twin
    for a, b in synth.FLIP_MAP.items():
        assert synth.FLIP_MAP[b] == a


@pytest.mark.parametrize("forward,backward", synth.TWINS)
def test_twin_is_the_time_reversal(forward, backward):
    # The reversed class is rendered as its twin and played backwards, so its frame *set* has
    # the same distribution as the twin's: a frame-order-invariant model is at chance between them.
    for s in range(2):
        a = synth.render_clip(forward, np.random.default_rng([9, s]), 32, 12)
        b = synth.render_clip(backward, np.random.default_rng([9, s]), 32, 12)
        assert a.shape == (12, 32, 32, 3) and a.dtype == np.uint8
        assert np.array_equal(b, a[::-1])
        assert not np.array_equal(a, a[::-1])  # there is motion


def test_appearance_is_random_within_a_class():
    clips = [synth.render_clip("moving_left", np.random.default_rng([1, k]), 32, 8) for k in range(4)]
    means = [c.reshape(-1, 3).mean(0) for c in clips]
    assert min(np.abs(means[i] - means[j]).max() for i in range(4) for j in range(i + 1, 4)) > 1


@pytest.mark.parametrize("forward,backward", synth.TWINS)
def test_easy_twins_are_time_reversals_with_random_appearance(forward, backward):
    # easy: still decided only by motion (twin = time reversal), appearance random per clip; a flat
    # background (no distractors, jitter or texture) and a high-contrast object
    clips = []
    for s in range(3):
        a = synth.render_clip(forward, np.random.default_rng([9, s]), 32, 8, "easy")
        b = synth.render_clip(backward, np.random.default_rng([9, s]), 32, 8, "easy")
        assert np.array_equal(b, a[::-1]) and not np.array_equal(a, a[::-1])
        assert not np.array_equal(a, synth.render_clip(forward, np.random.default_rng([9, s]), 32, 8))
        clips.append(a)
    means = [c.reshape(-1, 3).mean(0) for c in clips]
    assert min(np.abs(means[i] - means[j]).max() for i in range(3) for j in range(i + 1, 3)) > 1


def test_easy_clip_is_clean_and_moves_far():
    a = synth.render_clip("moving_right", np.random.default_rng([3, 0]), 32, 8, "easy").astype(float)
    bg = np.median(a.reshape(-1, 3), axis=0)
    obj = np.abs(a - bg).max(-1) > 60  # [T, H, W] object mask: far from the background colour
    near = np.abs(a - bg).max(-1) < 12  # flat background with mild noise
    assert (near | obj).mean() > 0.9  # the rest: anti-aliased object edges
    assert obj.mean() > 0.04  # a large object
    xs = [np.nonzero(m.any(0))[0].mean() for m in obj]
    assert xs[-1] - xs[0] > 0.4 * 32  # a large displacement, to the right


def test_difficulty_is_recorded_and_checked(tmp_path):
    g = synth.generate(str(tmp_path / "e"), classes=2, per_class=2, frames=8, size=32, difficulty="easy")
    assert json.load(open(g.classes_json))["settings"]["difficulty"] == "easy"
    g = synth.generate(str(tmp_path / "s"), classes=2, per_class=2, frames=8, size=32)
    assert json.load(open(g.classes_json))["settings"]["difficulty"] == "standard"
    with pytest.raises(ValueError, match="difficulty"):
        synth.generate(str(tmp_path / "x"), classes=2, per_class=2, frames=8, size=32, difficulty="hard")
    with pytest.raises(ValueError, match="difficulty"):
        synth.render_clip("growing", np.random.default_rng(0), 32, 8, "hard")


def test_generate_deterministic_and_metadata(tmp_path):
    kw = dict(classes="moving_up,moving_down,appearing", per_class=4, frames=8, size=32, seed=5)
    a = synth.generate(str(tmp_path / "a"), **kw)
    b = synth.generate(str(tmp_path / "b"), **kw)
    assert len(a.videos) == 12
    for x, y in zip(a.videos, b.videos):  # same decoded frames (the MP4 header holds a creation time)
        with PyAVDecoder(x) as dx, PyAVDecoder(y) as dy:
            assert np.array_equal(dx.read_all(), dy.read_all())
    meta = json.load(open(a.classes_json))
    assert meta["classes"] == ["moving_up", "moving_down", "appearing"]
    assert meta["twins"] == [["moving_down", "moving_up"]] and meta["flip_map"] == {}
    assert meta["label_map_hash"] == label_map_hash(meta["classes"])
    rows = list(csv.reader(open(a.val_csv)))
    assert rows[0] == ["path", "label"] and len(rows) == 1 + 3  # one val clip per class
    assert len(list(csv.reader(open(a.train_csv)))) == 1 + 9
    # the clips of a class do not depend on which other classes are generated
    c = synth.generate(str(tmp_path / "c"), classes=["appearing"] + ["moving_up"], per_class=4, frames=8, size=32,
                       seed=5)
    same = [v for v in c.videos if "appearing_0002" in v][0]
    with PyAVDecoder(same) as d1, PyAVDecoder([v for v in a.videos if "appearing_0002" in v][0]) as d2:
        assert np.array_equal(d1.read_all(), d2.read_all())
        assert d1.meta.codec == "h264" and d1.meta.num_frames == 8 and same.endswith(".mp4")


def test_generate_rejects_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="unknown SynthMotion class"):
        synth.generate(str(tmp_path), classes="moving_sideways,growing")
    with pytest.raises(ValueError, match="even"):
        synth.generate(str(tmp_path), size=33)


def test_cli_synth_and_check_data(tmp_path, capsys):
    out = str(tmp_path / "sm")
    assert main(["synth", out, "--classes", "3", "--per-class", "3", "--frames", "8", "--size", "32",
                 "--frame-folders"]) == 0
    assert "9 clips" in capsys.readouterr().out
    assert os.path.isfile(os.path.join(out, "train_list.txt"))
    assert main(["check-data", out, "--split", "train"]) == 0
    assert "no problems found" in capsys.readouterr().out
    assert main(["check-data", out, "--frame-folders", "--model", "tsm_r50"]) == 0  # 8 frames for 8 segments
    capsys.readouterr()
    assert main(["check-data", out, "--frame-folders", "--min-frames", "9"]) == 1
    assert "3 problem(s) (too_short: 3)" in capsys.readouterr().out


def test_cli_synth_difficulty_is_recorded(tmp_path, capsys):
    import json

    out = str(tmp_path / "easy")
    assert main(["synth", out, "--classes", "2", "--per-class", "2", "--frames", "8", "--size", "32",
                 "--difficulty", "easy"]) == 0
    assert capsys.readouterr().out.startswith("SynthMotion (easy): 4 clips")
    with open(os.path.join(out, "classes.json")) as f:
        assert json.load(f)["settings"]["difficulty"] == "easy"
    with pytest.raises(SystemExit):
        main(["synth", out, "--difficulty", "hard"])


def test_check_data_reports_every_problem(tmp_path, capsys):
    g = synth.generate(str(tmp_path / "sm"), classes=2, per_class=2, frames=8, size=32, seed=1)
    synth.write_video(str(tmp_path / "one.mp4"), np.zeros((1, 32, 32, 3), np.uint8))
    (tmp_path / "zero.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("nope\n" * 30)
    data = open(g.videos[0], "rb").read()
    (tmp_path / "trunc.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "labels.txt").write_text("a\nb\n")
    lines = [f"{g.videos[0]},a", "trunc.mp4,a", "zero.mp4,b", "text.mp4,b", "one.mp4,a", "gone.mp4,b",
             f"{g.videos[1]},c"]
    (tmp_path / "list.csv").write_text("path,label\n" + "\n".join(lines) + "\n")
    report_path = str(tmp_path / "report.json")
    assert main(["check-data", str(tmp_path / "list.csv"), "--json", report_path]) == 1
    out = capsys.readouterr().out
    report = json.load(open(report_path))
    kinds = {os.path.basename(p["path"]): p["kind"] for p in report["problems"]}
    assert kinds == {"trunc.mp4": "unreadable", "zero.mp4": "empty", "text.mp4": "unreadable",
                     "one.mp4": "too_short", "gone.mp4": "missing", os.path.basename(g.videos[1]): "mislabeled"}
    assert "label 'c' is not in the label map" in out and "1 frames < 3 needed" in out
    assert report["num_items"] == 7 and report["class_counts"] == {"a": 3, "b": 3}  # the mislabeled entry is not counted


def test_check_dataset_frame_count_mismatch(tmp_path):
    g = synth.generate(str(tmp_path / "sm"), classes=2, per_class=2, frames=8, size=32, seed=2, frame_folders=True)
    text = open(g.val_list).read().replace(" 8 ", " 9 ", 1)
    open(g.val_list, "w").write(text)
    info = ModelInfo(name="t", family="t", paper="-", num_frames=4, num_segments=4, crop_size=32, resize_size=32)
    ds = build_dataset(g.root, info, "val", frame_folders=True, bad_labels="keep")
    report = check_dataset(ds)
    assert [(p.index, p.kind) for p in report.problems] == [(0, "frame_count")]
    assert "list says 9 frames, folder has 8" in report.problems[0].reason
