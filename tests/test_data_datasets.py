"""build_dataset formats, item layout (views clip-major then crop), label maps, error policy, collate."""
import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import torch

from zoo.data import DataError, build_dataset, collate, synth
from zoo.models import ModelInfo


def _info(**kw):
    base = dict(name="t", family="t", paper="-", num_frames=4, num_segments=4, crop_size=32, resize_size=32,
                train_jitter=(32, 40), test_views=(1, 1))
    base.update(kw)
    return ModelInfo(**base)


@pytest.fixture(scope="module")
def sm(tmp_path_factory):
    root = tmp_path_factory.mktemp("sm")
    return synth.generate(str(root), classes=["moving_right", "moving_left", "growing"], per_class=4, frames=16,
                          size=32, seed=0, frame_folders=True, lossless=True)


def test_synth_directory_val_items(sm):
    ds = build_dataset(sm.root, _info(test_views=(2, 3)), "val")
    assert len(ds) == 3 and ds.class_names == ["moving_right", "moving_left", "growing"]
    with open(sm.label_map, "rb") as f:
        assert ds.label_map_hash == hashlib.sha256(f.read()).hexdigest()
    item = ds[2]
    assert item["video"].shape == (6, 3, 4, 32, 32) and item["video"].dtype == torch.float32
    assert item["label"] == 2 and item["index"] == 2 and item["path"].endswith("growing_0000.mkv")
    assert "error" not in item


def test_view_order_clip_major_then_crop(tmp_path):
    # frame t has red = 6 t everywhere, green = 3 x: the views reveal their clip and crop
    t, h, w = 24, 32, 64
    frames = np.zeros((t, h, w, 3), np.uint8)
    frames[..., 0] = (6 * np.arange(t))[:, None, None]
    frames[..., 1] = (3 * np.arange(w))[None, None, :]
    synth.write_video(str(tmp_path / "v.mkv"), frames, lossless=True)
    (tmp_path / "list.csv").write_text("v.mkv,0\n")
    info = _info(mean=(0, 0, 0), std=(1, 1, 1), test_views=(2, 3))
    video = build_dataset(str(tmp_path / "list.csv"), info)[0]["video"] * 255
    assert video.shape == (6, 3, 4, 32, 32)
    clips = [[3, 9, 15, 21], [0, 6, 12, 18]]  # segment centres, then starts (twice_sample)
    for v in range(6):
        assert torch.allclose(video[v, 0, :, 0, 0], 6 * torch.tensor(clips[v // 3], dtype=torch.float), atol=1e-3)
        assert video[v, 1, 0, 0, 0].item() == pytest.approx(3 * [0, 16, 32][v % 3], abs=1e-3)


def test_frame_folders_give_the_same_items_as_lossless_videos(sm):
    info = _info(test_views=(2, 1))
    a = build_dataset(sm.root, info, "train")
    b = build_dataset(sm.root, info, "train", frame_folders=True)
    assert a.class_names == b.class_names and len(a) == len(b) == 9
    for i in (0, 4, 8):
        x, y = a[i], b[i]
        assert x["label"] == y["label"] and torch.equal(x["video"], y["video"])


def test_train_items_one_view_reproducible(sm):
    ds = build_dataset(sm.root, _info(test_views=(4, 3)), "train", train=True)
    assert ds.views == (1, 1) and ds.flip_map == {0: 1, 1: 0}
    torch.manual_seed(0)
    a = [ds[i] for i in range(3)]
    torch.manual_seed(0)
    b = [ds[i] for i in range(3)]
    for x, y in zip(a, b):
        assert x["video"].shape == (1, 3, 4, 32, 32)
        assert torch.equal(x["video"], y["video"]) and x["label"] == y["label"]
    with pytest.raises(ValueError, match="one view"):
        build_dataset(sm.root, _info(), "train", train=True, views=(2, 1))


def test_flip_swaps_left_right_labels(sm):
    ds = build_dataset(sm.root, _info(), "train", train=True)
    torch.manual_seed(0)
    labels = {ds[i]["label"] for i in range(3) for _ in range(8)}  # items 0-2 are moving_right
    assert labels == {0, 1}
    growing = {ds[i]["label"] for i in range(6, 9) for _ in range(8)}
    assert growing == {2}


def test_dense_model_items(sm):
    info = _info(sampling="dense", num_segments=1, num_frames=8, sampling_rate=2, test_views=(3, 1))
    item = build_dataset(sm.root, info, "val")[0]
    assert item["video"].shape == (3, 3, 8, 32, 32)


def test_csv_variants(tmp_path, sm):
    vid = os.path.relpath(sm.videos[0], tmp_path)
    (tmp_path / "names.csv").write_text(f"{vid},b_class\n{vid} a_class\n")  # no header; space-separated line
    ds = build_dataset(str(tmp_path / "names.csv"), _info())
    assert ds.class_names == ["a_class", "b_class"] and ds.labels == [1, 0]
    (tmp_path / "ints.csv").write_text(f"path,label\n{vid},2\n{vid},0\n")
    ds = build_dataset(str(tmp_path / "ints.csv"), _info())
    assert ds.class_names == ["0", "1", "2"] and ds.labels == [2, 0]
    # start/end in seconds: 15 fps, 0.4 s .. 0.8 s -> frames 6..11
    (tmp_path / "trim.csv").write_text(f"path,label,start,end\n{sm.videos[0]},0,0.4,0.8\n")
    info = _info(mean=(0, 0, 0), std=(1, 1, 1), num_frames=6, num_segments=6)
    trimmed = build_dataset(str(tmp_path / "trim.csv"), info)[0]["video"]
    (tmp_path / "full.csv").write_text(f"{sm.videos[0]},0\n")
    full = build_dataset(str(tmp_path / "full.csv"), info.replace(num_frames=16, num_segments=16))[0]["video"]
    assert torch.equal(trimmed[0], full[0][:, 6:12])


def test_label_map_file_and_unknown_labels(tmp_path, sm):
    (tmp_path / "labels.txt").write_text("x\ny\nz\n")
    (tmp_path / "l.csv").write_text(f"{sm.videos[0]},y\n{sm.videos[1]},nope\n{sm.videos[2]},2\n")
    with pytest.raises(ValueError, match=r"label 'nope' is not in the label map \(3 classes\).*l\.csv:2"):
        build_dataset(str(tmp_path / "l.csv"), _info())
    ds = build_dataset(str(tmp_path / "l.csv"), _info(), bad_labels="keep", on_error="skip")
    assert ds.class_names == ["x", "y", "z"] and ds.labels == [1, None, 2]
    assert "not in the label map" in ds[1]["error"] and ds[1]["video"] is None
    other = tmp_path / "other.txt"
    other.write_text("nope\ny\n")
    ds = build_dataset(str(tmp_path / "l.csv"), _info(), label_map=str(other), bad_labels="keep")
    assert ds.labels == [1, 0, None]


def test_tsn_list(sm):
    ds = build_dataset(sm.val_list, _info(), frames_template="img_{:05d}.png")
    assert len(ds) == 3 and ds.labels == [0, 1, 2] and ds.records[0].num_frames == 16
    assert ds[0]["video"].shape == (1, 3, 4, 32, 32)


def test_class_folder_tree(tmp_path, sm):
    for split in ("train", "val"):
        for cls in ("b", "a"):
            os.makedirs(tmp_path / split / cls)
    shutil.copy(sm.videos[0], tmp_path / "val" / "b" / "x.mkv")
    shutil.copy(sm.videos[5], tmp_path / "val" / "a" / "y.mkv")
    shutil.copytree(os.path.join(sm.root, "frames", "growing", "growing_0000"), tmp_path / "val" / "a" / "z")
    (tmp_path / "val" / "a" / "notes.txt").write_text("ignored")
    ds = build_dataset(str(tmp_path), _info(), "val", frames_template="img_{:05d}.png")
    assert ds.class_names == ["a", "b"] and ds.labels == [0, 0, 1] and len(ds) == 3
    assert ds[2]["video"].shape == (1, 3, 4, 32, 32)


def test_ssv2_json(tmp_path, sm):
    src = os.path.join(sm.root, "frames", "moving_left", "moving_left_0000")
    os.makedirs(tmp_path / "frames" / "123")
    for i in range(16):
        shutil.copy(os.path.join(src, f"img_{i + 1:05d}.png"), tmp_path / "frames" / "123" / f"{i + 1:06d}.png")
    labels = {"Moving something left": "1", "Moving something right": "0"}
    (tmp_path / "something-something-v2-labels.json").write_text(json.dumps(labels))
    ann = [{"id": "123", "label": "moving pen left", "template": "Moving [something] left", "placeholders": ["pen"]}]
    (tmp_path / "val.json").write_text(json.dumps(ann))
    ds = build_dataset(str(tmp_path / "val.json"), _info(), root=str(tmp_path / "frames"),
                       frames_template="{:06d}.png")
    assert ds.class_names == ["Moving something right", "Moving something left"] and ds.labels == [1]
    assert ds[0]["video"].shape == (1, 3, 4, 32, 32)
    assert build_dataset(str(tmp_path / "val.json"), _info(), train=True, root=str(tmp_path / "frames")).transform.flip \
        is False  # no flips for Something-Something (TSM/PAN)


@pytest.fixture()
def broken(tmp_path, sm):
    shutil.copy(sm.videos[0], tmp_path / "good.mkv")
    (tmp_path / "zero.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("no video here\n" * 20)
    (tmp_path / "list.csv").write_text("good.mkv,0\nzero.mp4,1\ntext.mp4,0\nmissing.mp4,1\n")
    return str(tmp_path / "list.csv")


def test_on_error_error_names_path_and_reason(broken):
    ds = build_dataset(broken, _info())
    assert ds[0]["video"] is not None
    with pytest.raises(DataError, match=r"item 1: .*zero\.mp4: empty file \(0 bytes\)\. Fix or remove it"):
        ds[1]
    with pytest.raises(DataError, match=r"text\.mp4: cannot open"):
        ds[2]
    with pytest.raises(DataError, match=r"missing\.mp4: file not found"):
        ds[3]


def test_on_error_skip_and_collate(broken):
    ds = build_dataset(broken, _info(), on_error="skip")
    items = [ds[i] for i in range(len(ds))]
    assert [it["video"] is None for it in items] == [False, True, True, True]
    assert items[1]["error"] == "empty file (0 bytes)" and items[1]["label"] == 1
    batch = collate(items)
    assert batch["video"].shape == (1, 1, 3, 4, 32, 32)
    assert batch["label"].tolist() == [0] and batch["index"].tolist() == [0]
    assert [e["index"] for e in batch["errors"]] == [1, 2, 3]
    assert batch["errors"][2]["path"].endswith("missing.mp4") and batch["errors"][2]["error"] == "file not found"
    none = collate(items[1:])
    assert none["video"] is None and len(none["errors"]) == 3
    with pytest.raises(ValueError, match="on_error"):
        build_dataset(broken, _info(), on_error="substitute")


def test_short_videos_repeat_frames_and_too_short_ones_are_bad_items(tmp_path):
    """3 frames (MIN_FRAMES) make a clip of 4 by repeating frames; 1 frame is a still image, reported
    under the on-error policy like an unreadable video, never turned into a clip."""
    from zoo.data import MIN_FRAMES

    assert MIN_FRAMES == 3
    levels = (100, 150, 200)
    synth.write_video(str(tmp_path / "three.mkv"), np.stack([np.full((32, 32, 3), v, np.uint8) for v in levels]),
                      lossless=True)
    synth.write_video(str(tmp_path / "one.mkv"), np.full((1, 32, 32, 3), 200, np.uint8), lossless=True)
    (tmp_path / "l.csv").write_text("three.mkv,0\none.mkv,0\n")
    ds = build_dataset(str(tmp_path / "l.csv"), _info(mean=(0, 0, 0), std=(1, 1, 1)))
    v = ds[0]["video"]
    assert v.shape == (1, 3, 4, 32, 32)
    seen = {round(float(v[0, :, t].mean()) * 255) for t in range(4)}
    assert seen <= set(levels) and len(seen) >= 2
    with pytest.raises(DataError, match="one.mkv: too short: 1 frame, a clip needs at least 3"):
        ds[1]
    ds.on_error = "skip"
    item = ds[1]
    assert item["video"] is None and item["error"] == "too short: 1 frame, a clip needs at least 3"


def test_dataloader_with_worker(sm):
    ds = build_dataset(sm.root, _info(), "train", train=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=1, collate_fn=collate)
    batches = list(loader)
    assert sum(len(b["label"]) for b in batches) == 9 and all(not b["errors"] for b in batches)
    assert batches[0]["video"].shape == (4, 1, 3, 4, 32, 32)
