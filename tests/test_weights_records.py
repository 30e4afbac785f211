"""Per-checkpoint `Weights` records and `BenchPreset`s registered beside each builder, and the one
path from name + checkpoint to a loaded model (`build_with_checkpoint`)."""
import pytest
import torch

import zoo
from zoo.cli import main
from zoo.models import BenchPreset, Weights, build_with_checkpoint, list_models, model_info, model_weights

ALL = list_models()


@pytest.mark.parametrize("name", ALL)
def test_records_are_consistent_with_the_model(name):
    info, weights = model_info(name), model_weights(name)
    assert isinstance(zoo.models.bench_preset(name), BenchPreset)
    assert all(isinstance(w, Weights) and w.tag and w.num_classes > 0 for w in weights)
    assert len({w.tag for w in weights}) == len(weights)
    assert all(r.dataset == w.dataset for w in weights for r in w.results)
    releases = [w for w in weights if w.dataset != "imagenet"]  # ImageNet records only initialise
    if releases:  # the default classifier is the first release's
        assert (info.num_classes, info.dataset) == (releases[0].num_classes, releases[0].dataset)
        assert zoo.weights_info(name) is releases[0]
    elif weights:  # an initialisation only (TEA): no default release
        with pytest.raises(zoo.ZooError, match="no released video weights"):
            zoo.weights_info(name)
    assert not hasattr(info, "results") and not hasattr(info, "checkpoints") and not hasattr(info, "bench")


def test_every_release_file_is_in_one_record():
    files = [f for n in ALL for w in model_weights(n) for f in w.file_names]
    assert "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth" in files
    pan_full = {w.tag: w.file_names for w in model_weights("pan_full_r50")}
    assert pan_full["sthv2"] == ("PAN_RGB_somethingv2_resnet50_shift8_blockres_avg_segment8_e50.pth.tar",
                                 "PAN_PA_somethingv2_resnet50_shift8_blockres_avg_segment8_e80.pth.tar")


def test_duplicate_tags_are_refused():
    with pytest.raises(ValueError, match="duplicate weights tags"):
        zoo.register_model(model_info("tsm_r50"), weights=(Weights("a", 2, "d"), Weights("a", 3, "d")))


def _saved(tmp_path, name, num_classes, **overrides):
    model = zoo.build(name, num_classes=num_classes, **overrides)
    path = tmp_path / f"{name}.pt"
    torch.save(model.state_dict(), path)
    return model, str(path)


def test_classifier_follows_the_checkpoint_read_once(tmp_path, monkeypatch):
    src, path = _saved(tmp_path, "tsm_r50", 7, backbone="resnet18")
    reads = []
    read = zoo.models._checkpoint_io.read_checkpoint
    monkeypatch.setattr(zoo.models._checkpoint_io, "read_checkpoint", lambda p, **kw: reads.append(p) or read(p, **kw))
    model = zoo.build("tsm_r50", weights=path, backbone="resnet18")
    assert reads == [path] and model.num_classes == 7 and model.info.num_classes == 7
    assert not model.load_report.reinitialised
    x = torch.randn(1, 3, 8, 32, 32)
    assert torch.equal(model.eval()(x), src.eval()(x))
    # another num_classes: a fresh head for fine-tuning, everything else loaded
    with pytest.warns(UserWarning, match="classifier re-initialised for 3 classes"):
        tuned = zoo.build("tsm_r50", num_classes=3, weights=path, backbone="resnet18")
    assert tuned.num_classes == 3 and tuned.load_report.reinitialised == ["fc.weight", "fc.bias"]


def test_build_with_checkpoint_takes_a_read_object(tmp_path):
    _, path = _saved(tmp_path, "r2plus1d_18", 4)
    raw = torch.load(path, weights_only=True)
    model = build_with_checkpoint("r2plus1d_18", raw)
    assert model.num_classes == 4 and len(model.load_report.loaded) == len(raw) - len(model.load_report.filled)


def test_predict_uses_the_checkpoint_classifier(tmp_path, capsys):
    """`zoo predict` without a label map: the classes follow the checkpoint (read and built once)."""
    from zoo.data import synth

    _, path = _saved(tmp_path, "tsm_r50", 6, backbone="resnet18")
    synth.generate(str(tmp_path / "d"), ["moving_right", "moving_left"], per_class=2, frames=8, size=32, seed=0)
    video = next(p for p in (tmp_path / "d").rglob("*.mp4"))
    rc = main(["predict", "tsm_r50", str(video), "--weights", path, "--model-arg", "backbone=resnet18",
               "--size", "32", "--no-optimize", "--topk", "6"])
    out = capsys.readouterr().out
    assert rc == 0 and sum(line.strip()[:2] in {f"{i}." for i in range(1, 7)} for line in out.splitlines()) == 6
