"""Resolve once (`zoo.resolve`): a model's name, options, clip length, protocol, weights and class
names come from one `Spec`, whatever path asks for them: a tag, a release file given by path (by
its name or its sha256), a zoo checkpoint, the command line, training. The contract every built
model carries (`zoo.VideoModel`). Fabricated releases only, served from a mirror directory."""
import dataclasses
import hashlib
import os

import pytest
import torch

import zoo
from zoo.cli import main
from zoo.data import synth
from zoo.models import VideoModel, list_models, resolve

from test_tsm import official_layout

RELEASE_16F = zoo.weights_info("tsm_r50.kinetics400_16f")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ZOO_WEIGHTS_MIRROR", raising=False)
    return tmp_path / "cache" / "weights"


def _release_16f(directory, **args):
    """tsm_r50.kinetics400_16f in TSM's official layout under its release file name (``args``: other
    options, e.g. a smaller backbone)."""
    src = zoo.build("tsm_r50", num_classes=400, num_segments=16, **args).eval()
    path = directory / RELEASE_16F.file_names[0]
    torch.save(official_layout(src), path)
    return src, str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    synth.generate(str(out), classes=2, per_class=4, frames=16, size=32, seed=0)
    return str(out)


def test_the_frames_rule_lives_in_the_spec():
    release = resolve("tsm_r50", pretrained="kinetics400_16f")
    assert release.model_args == {"num_segments": 16} and release.info.num_frames == 16
    assert release.record == RELEASE_16F and len(release.categories) == 400 and release.info.num_classes == 400
    assert resolve("tsm_r50", frames=12).model_args == {"num_segments": 12}
    assert resolve("tsm_r50", num_segments=4).info.num_frames == 4
    # a release whose protocol names a clip length sets the option that goes with it
    mma = resolve("i3d_r50", pretrained="kinetics400_mmaction2")
    assert mma.info.num_frames == 32 and mma.model_args["num_frames"] == 32 and mma.model_args["stem_strides"] == [2, 2]
    assert resolve("pan_full_r50", centre_frame=False).info.num_frames == 32  # 8 segments x 4 PA frames
    with pytest.raises(zoo.UsageError, match="samples 4 frames per segment"):
        resolve("pan_lite_r50", frames=10)
    spec = resolve("tsm_r50", pretrained="kinetics400_16f").with_classes(5)
    assert spec.info.num_classes == 5 and spec.categories == ()


def test_build_takes_a_spec_and_sets_the_contract_once(cache, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    src, _ = _release_16f(mirror)
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(mirror))
    spec = resolve("tsm_r50", pretrained="kinetics400_16f")
    model = zoo.build(spec)
    x = torch.randn(1, 3, 16, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), src(x))
    assert isinstance(model, VideoModel) and model.info == spec.info and model.categories == spec.categories
    assert model.weights_tag == "tsm_r50.kinetics400_16f" and model.build_args == {"num_segments": 16}
    assert model.load_report.loaded and not model.load_report.reinitialised
    with pytest.raises(zoo.UsageError, match="takes the spec alone"):
        zoo.build(spec, num_classes=3)


@pytest.mark.parametrize("name", list_models())
def test_every_model_is_a_video_model(name):
    with torch.device("meta"):
        model = zoo.build(name)
    assert isinstance(model, VideoModel) and model.info.name == name and model.weights_tag is None
    assert model.load_report is None and model.categories == () and dict(model.build_args) == {}
    assert isinstance(model.networks(), dict)


@pytest.mark.slow
def test_train_pretrained_16f_trains_on_16_frame_clips(data, cache, tmp_path, monkeypatch):
    """`zoo train tsm_r50 --pretrained kinetics400_16f`: the release's 16 segments make the model and
    the clips alike (it built a 16-segment model and sampled 8-frame clips before)."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    _release_16f(mirror, backbone="resnet18")
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(mirror))
    seen = []
    from zoo.data import datasets
    real = datasets.VideoDataset.load

    def load(self, i, rng=None):
        video, label = real(self, i, rng)
        seen.append(video.shape[2])
        return video, label
    monkeypatch.setattr(datasets.VideoDataset, "load", load)
    out = str(tmp_path / "run")
    assert main(["train", "tsm_r50", "--pretrained", "kinetics400_16f", "--data", data, "--out", out,
                 "--set", "model_args.backbone=resnet18", "--size", "32", "--epochs", "1", "--batch-size", "2",
                 "--no-progress"]) == 0
    assert set(seen) == {16}
    identity = torch.load(os.path.join(out, "model.pt"), weights_only=True)["zoo"]
    assert identity["model_args"]["num_segments"] == 16 and identity["input"]["num_frames"] == 16


@pytest.mark.slow
def test_the_mapped_cache_is_written_on_every_path_that_loads_a_release(cache, tmp_path, monkeypatch, data):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    src, path = _release_16f(mirror)
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(mirror))
    video = os.path.join(data, "videos", "moving_left", "moving_left_0000.mp4")
    mapped = cache / "mapped"
    # the command line: the tag's own options come back from the spec, and the cache is written
    assert main(["predict", "tsm_r50", video, "--pretrained", "kinetics400_16f", "--size", "32", "--no-optimize"]) == 0
    assert len(list(mapped.glob("tsm_r50.kinetics400_16f-*.pt"))) == 1
    for f in mapped.iterdir():
        f.unlink()
    # the Python API by tag, and a release file given by path (recognised by its name)
    zoo.build("tsm_r50", weights="kinetics400_16f")
    assert len(list(mapped.glob("*.pt"))) == 1
    for f in mapped.iterdir():
        f.unlink()
    model = zoo.build("tsm_r50", weights=path)
    assert len(list(mapped.glob("*.pt"))) == 1 and model.weights_tag == RELEASE_16F.name


def test_a_release_file_given_by_path_is_read_as_that_release(cache, tmp_path, capsys, data):
    """The file name of a release: its options (16 segments), protocol and class names apply, and one
    line says which release matched; a renamed copy is a plain checkpoint."""
    src, path = _release_16f(tmp_path, backbone="resnet18")
    spec = resolve("tsm_r50", weights=path, backbone="resnet18")
    assert spec.record == RELEASE_16F and spec.model_args["num_segments"] == 16 and spec.info.num_frames == 16
    assert spec.categories == RELEASE_16F.categories
    assert spec.notes == (f"{path}: release {RELEASE_16F.name} (by its file name): its options, input protocol and "
                          f"class names apply",)
    video = os.path.join(data, "videos", "moving_left", "moving_left_0000.mp4")
    assert main(["predict", "tsm_r50", video, "--weights", path, "--model-arg", "backbone=resnet18", "--size", "32",
                 "--no-optimize", "--topk", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == spec.notes[0] and out[2].split(maxsplit=1)[1].rsplit(maxsplit=1)[0] in RELEASE_16F.categories
    renamed = tmp_path / "mine.pth"
    os.replace(path, renamed)
    plain = resolve("tsm_r50", weights=str(renamed), backbone="resnet18")
    assert plain.record is None and plain.model_args == {"backbone": "resnet18"} and plain.notes == ()


def test_a_release_file_is_recognised_by_its_sha256(tmp_path, monkeypatch):
    import zoo.models._resolve as resolver

    path = tmp_path / "renamed.bin"
    path.write_bytes(os.urandom(4096))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    record = dataclasses.replace(RELEASE_16F, files=("https://example.invalid/official.pth",), digests=(digest,))
    monkeypatch.setattr(resolver, "_records", lambda name: [record])
    found, note = resolver.release_of_files([str(path)], "tsm_r50")
    assert found == record and "(by its sha256)" in note
    path.write_bytes(os.urandom(4096))
    assert resolver.release_of_files([str(path)], "tsm_r50") == (None, None)


def test_a_file_that_needs_a_release_s_options_names_the_release(tmp_path, monkeypatch):
    """A checkpoint that loads only with the options of one of the model's releases: the error
    names that release and its options."""
    from zoo.models import _registry

    entry = _registry.get_entry("tsm_r50")
    small = dataclasses.replace(RELEASE_16F, tag="small_release", model_args={"backbone": "resnet18"})
    monkeypatch.setitem(_registry._REGISTRY, "tsm_r50", dataclasses.replace(entry, weights=entry.weights + (small,)))
    path = tmp_path / "mine.pth"
    torch.save(official_layout(zoo.build("tsm_r50", num_classes=400, backbone="resnet18")), path)
    with pytest.raises(zoo.BadCheckpoint, match=r"it fits the options of the release tsm_r50.small_release "
                                                 r"\(backbone='resnet18'\)"):
        zoo.build("tsm_r50", weights=str(path))


def test_a_zoo_checkpoint_names_its_model_options_protocol_and_classes(tmp_path):
    src = zoo.build("tsn_r50", num_classes=3, backbone="resnet18", num_segments=4)
    src.categories = ("a", "b", "c")  # as the builder would set them from a release
    path = tmp_path / "run.pt"
    torch.save(zoo.models.zoo_checkpoint(src), path)
    spec = resolve(weights=str(path))
    assert spec.name == "tsn_r50" and spec.model_args == {"backbone": "resnet18", "num_segments": 4}
    assert spec.info.num_frames == 4 and spec.categories == ("a", "b", "c") and spec.info.num_classes == 3
    assert resolve(weights=str(path), frames=6).model_args["num_segments"] == 6  # the caller wins
    with pytest.raises(zoo.BadCheckpoint, match="is a tsn_r50 checkpoint, not tsm_r50"):
        resolve("tsm_r50", weights=str(path))
    model = zoo.build(weights=str(path))
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), src.eval()(x))
