"""`zoo convert` and the command-line error paths of eval/train/convert (one line, exit 2)."""
import re

import pytest
import torch

import zoo
from zoo.cli import main


def _official_tsm_layout(state_dict):
    """Rename zoo keys to the official TSM release layout (module.base_model.*, .net shift wrappers, new_fc)."""
    out = {}
    for k, v in state_dict.items():
        if k.startswith("fc."):
            k = "new_fc." + k[3:]
        else:
            k = "base_model." + k[len("backbone."):]
            k = re.sub(r"(layer\d\.\d+\.conv1)\.", r"\1.net.", k)
        out["module." + k] = v
    return {"epoch": 45, "arch": "resnet50", "state_dict": out}


def test_convert_official_checkpoint(tmp_path, capsys):
    src = zoo.build("tsm_r50", num_classes=7)
    official = _official_tsm_layout(src.state_dict())
    torch.save(official, tmp_path / "official.pth")
    dst = tmp_path / "zoo.pt"
    assert main(["convert", "--model", "tsm_r50", str(tmp_path / "official.pth"), str(dst)]) == 0
    out = capsys.readouterr().out
    assert "tsm_r50" in out and "loaded" in out
    back = zoo.build("tsm_r50", num_classes=7, weights=str(dst))
    for k, v in src.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    # a broken checkpoint: nothing written, the missing key named, exit 2
    del official["state_dict"]["module.base_model.layer1.0.bn1.weight"]
    torch.save(official, tmp_path / "broken.pth")
    assert main(["convert", "--model", "tsm_r50", str(tmp_path / "broken.pth"), str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert "backbone.layer1.0.bn1.weight" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.pt").exists()


def test_convert_refuses_a_file_that_fits_several_models(tmp_path, capsys):
    """TSN and TSM have the same keys: --family tsm cannot tell them apart, --model can. A source
    named as a known release gets the release's class names in the zoo checkpoint."""
    src = zoo.build("tsm_r50", num_classes=400)
    name = "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth"
    torch.save(_official_tsm_layout(src.state_dict()), tmp_path / name)
    dst = tmp_path / "zoo.pt"
    assert main(["convert", "--family", "tsm", str(tmp_path / name), str(dst)]) == 2
    err = capsys.readouterr().err
    assert "tsn_r50" in err and "tsm_r50" in err and "pass --model" in err and not dst.exists()
    assert main(["convert", "--model", "tsm_r50", str(tmp_path / name), str(dst)]) == 0
    assert "release: tsm_r50.kinetics400" in capsys.readouterr().out
    identity = zoo.models.checkpoint_identity(torch.load(dst, weights_only=True))
    assert identity["model"] == "tsm_r50" and identity["num_classes"] == 400
    assert tuple(identity["categories"]) == zoo.weights_info("tsm_r50.kinetics400").categories
    assert zoo.build("tsm_r50", weights=str(dst)).categories[0] == "abseiling"


@pytest.mark.parametrize("argv, message", [
    (["convert", "--family", "nope", "a.pth", "b.pt"], "does not exist"),
    (["eval", "tsm_r5", "--data", "x.csv"], "did you mean"),
    (["eval", "tsm_r50", "--data", "x.csv", "--views", "3by2"], "CLIPSxCROPS"),
    (["eval", "tsm_r50", "--data", "x.csv", "--weights", "missing.pt"], "does not exist"),
    (["eval", "--from", "no_such_dir"], "no saved logits"),
    (["eval", "tsm_r50", "--data", "x.csv", "--compile", "on", "--no-optimize"], "drop --no-optimize"),
    (["eval"], "name a model"),
    (["eval", "tsm_r50", "--data", "x.csv", "--published"], "goes with --pretrained"),
    (["eval", "tsm_r50", "--data", "x.csv", "--pretrained", "--weights", "w.pt"], "not both"),
    (["weights", "fetch"], "usage: zoo weights fetch"),
    (["weights", "tsm*", "--from", "x"], "--from goes with"),
    (["eval", "tsm_r50", "--data", "x.csv", "--pretrained", "kinetcs400"], "did you mean"),
    (["train", "tsm_r50"], "no data"),
    (["train", "tsm_r50", "--data", "x", "--set", "lr"], "key=value"),
    (["train", "tsm_r50", "--data", "x", "--set", "learning_rate=1"], "unknown config key"),
    (["train", "tsm_r50", "--data", "x", "--config", "missing.yaml"], "does not exist"),
])
def test_clear_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("command", ["eval", "train", "convert"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    assert "usage: zoo " + command in capsys.readouterr().out


def _structure(model):
    """The module tree with every plain attribute (pooling windows, segment counts...)."""
    return [repr(model)] + [f"{n}.{a}={v!r}" for n, m in model.named_modules() for a, v in sorted(vars(m).items())
                            if not a.startswith("_") and a != "training"
                            and isinstance(v, (bool, int, float, str, tuple))]


@pytest.mark.parametrize("name", zoo.list_models())
def test_frames_reach_the_constructor(name):
    """`--frames` (through the resolver) builds the module `zoo.build` builds for that T."""
    info = zoo.model_info(name)
    frames = info.num_frames // 2
    model = zoo.build(zoo.resolve(name, frames=frames, num_classes=5))
    value = frames // info.segment_length if info.frames_arg == "num_segments" else frames
    direct = zoo.build(name, num_classes=5, **({info.frames_arg: value} if info.frames_arg else {}))
    assert _structure(model) == _structure(direct)
    if info.frames_arg:  # the argument did change the module
        assert _structure(model) != _structure(zoo.build(name, num_classes=5))
    assert model.info.num_frames == frames and model.info.input_shape[1] == frames
    with torch.no_grad():
        out = model.eval()(torch.randn(1, 3, frames, info.min_size, info.min_size))
    assert out.shape == (1, 5)


def test_frames_disagreeing_with_a_model_arg_is_an_error():
    with pytest.raises(zoo.UsageError, match="num_frames=32 disagrees with 16 frames"):
        zoo.resolve("slowfast_8x8_r50", frames=16, num_frames=32)
