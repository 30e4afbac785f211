"""`zoo export`: every registered model to ONNX (run by onnxruntime) and to a torch.export program
(.pt2), verified against eager; the sidecar; the CLI. Registry-driven at small sizes: each model's
bench network (its `BenchPreset`: the same code paths, smaller backbones) at 32 px."""
import json
import os

import pytest
import torch

import zoo
from zoo.cli import main
from zoo.inference.export import FORMATS, export_model, verify_export

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def _small(name):
    from zoo.benchmark.bench_training import bench_model

    model = bench_model(name, num_classes=5).eval()
    return model, torch.randn(1, *model.info.input_shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", zoo.list_models())
def test_every_model_exports_and_runs_in_its_runtime(name, fmt, tmp_path):
    model, x = _small(name)
    out = str(tmp_path / f"{name}.{fmt}")
    meta = export_model(model, out, fmt=fmt, example=x)
    assert meta["input_shape"] == list(x.shape) and meta["model"] == zoo.model_info(name).name
    assert verify_export(out, fmt, model, x) <= 1e-4


def test_dynamic_batch_and_the_sidecar(tmp_path):
    model, x = _small("tsm_r50")
    model.categories = tuple(f"c{i}" for i in range(5))
    out = str(tmp_path / "tsm.onnx")
    meta = export_model(model, out, fmt="onnx", example=torch.cat([x, x.flip(0) + 1]), dynamic_batch=True)
    from zoo.inference.export import run_exported

    three = torch.randn(3, *x.shape[1:])
    with torch.no_grad():
        torch.testing.assert_close(run_exported(out, "onnx", three), model(three), rtol=1e-4, atol=1e-4)
    on_disk = json.load(open(out + ".json"))
    assert on_disk == meta and meta["input_shape"][0] is None and meta["categories"] == list(model.categories)
    assert meta["mean"] == list(model.info.mean) and meta["sampling"]["num_segments"] == model.info.num_segments
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]  # no temporary file left


def test_cli_export_verifies_and_names_the_weights_tag(tmp_path, capsys):
    out = str(tmp_path / "r21d.pt2")
    assert main(["export", "r2plus1d_18", "--format", "pt2", "--out", out, "--size", "32", "--frames", "8",
                 "--model-arg", "layers=[1,1,1,1]"]) == 0
    printed = capsys.readouterr().out
    assert "verified in torch.export.load" in printed and "(ok)" in printed
    assert main(["export", "tsm_r50", "--format", "onnx", "--out", str(tmp_path / "no" / "x.onnx")]) == 2
    assert main(["export", "tsm_r50", "--format", "onnx", "--out", out, "--batch", "0"]) == 2


@pytest.mark.slow
def test_pan_full_with_the_rgb_centre_frame_exports(tmp_path):
    """The release protocol's 40-frame input (4 PA frames + the RGB frame per segment) exports too."""
    model = zoo.build("pan_full_r50", num_classes=5, backbone="resnet18").eval()
    x = torch.randn(1, 3, 40, 32, 32)
    out = str(tmp_path / "pan.onnx")
    meta = export_model(model, out, fmt="onnx", example=x)
    assert meta["sampling"]["centre_frame"] is True and meta["input_shape"][2] == 40
    assert verify_export(out, "onnx", model, x) <= 1e-4


@pytest.mark.slow
def test_cli_export_of_a_weights_tag_carries_its_names(tmp_path, monkeypatch, capsys):
    """`--weights TAG`: the release (a fabricated file in its layout, from the mirror) with its class names."""
    from test_tsm import official_layout

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    record = zoo.weights_info("tsm_r50.kinetics400")
    torch.save(official_layout(zoo.build("tsm_r50", num_classes=400)), mirror / record.file_names[0])
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(mirror))
    out = str(tmp_path / "tsm.onnx")
    assert main(["export", "tsm_r50", "--weights", "kinetics400", "--format", "onnx", "--out", out,
                 "--size", "32"]) == 0
    meta = json.load(open(out + ".json"))
    assert meta["weights"] == "tsm_r50.kinetics400" and meta["categories"] == list(record.categories)
    assert "(ok)" in capsys.readouterr().out


@pytest.mark.slow
def test_int8_onnx_export_calibrates_and_reports_agreement(tmp_path, capsys):
    """onnxruntime static int8 (first increment of the int8 path): calibrated on the first videos,
    agreement with eager fp32 measured on the next ones and recorded in the sidecar."""
    from zoo.data import synth
    from zoo.inference.export import run_exported

    synth.generate(str(tmp_path / "d"), ["moving_right", "moving_left"], per_class=4, frames=8, size=32, seed=0)
    out = str(tmp_path / "tsm8.onnx")
    assert main(["export", "tsm_r50", "--format", "onnx", "--out", out, "--size", "32", "--model-arg",
                 "backbone=resnet18", "--int8", "--calibrate", str(tmp_path / "d"), "--calib-videos", "1"]) == 0
    assert "top-1 agreement with eager fp32 on 1 held-out video(s)" in capsys.readouterr().out
    meta = json.load(open(out + ".json"))
    q = meta["int8"]
    assert q["calibration"]["videos"] == 1 and q["heldout_videos"] == 1 and 0 <= q["top1_agreement_with_fp32"] <= 1
    assert run_exported(out, "onnx", torch.randn(1, 3, 8, 32, 32)).shape == (1, 174)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]  # no temporary file left
    assert main(["export", "tsm_r50", "--format", "pt2", "--out", out, "--int8", "--calibrate", "x"]) == 2
    assert main(["export", "tsm_r50", "--format", "onnx", "--out", out, "--int8"]) == 2


def test_readme_snippet_runs_an_export_without_zoo(tmp_path, monkeypatch, capsys):
    """The Deploy page's onnxruntime + sidecar snippet, as written, on an exported network."""
    import re

    import numpy as np

    readme = open(os.path.join(os.path.dirname(__file__), "..", "docs", "deploy.md")).read()
    snippet = re.search(r"needs only onnxruntime and the sidecar:\n\n```python\n(.*?)```", readme, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    assert main(["export", "tsm_r50", "--format", "onnx", "--out", "tsm.onnx", "--size", "32",
                 "--model-arg", "backbone=resnet18"]) == 0
    model_meta = json.load(open("tsm.onnx.json"))
    assert model_meta["categories"] == [] and model_meta["input_shape"] == [1, 3, 8, 32, 32]
    names = [f"class {i}" for i in range(174)]
    meta = dict(model_meta, categories=names)
    json.dump(meta, open("tsm.onnx.json", "w"))
    clip = np.random.default_rng(0).random((1, 3, 8, 32, 32), dtype=np.float32)
    capsys.readouterr()
    exec(snippet, {"clip": clip})
    assert capsys.readouterr().out.strip() in names
