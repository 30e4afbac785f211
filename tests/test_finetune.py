"""Fine-tuning: ImageNet initialisation through the weights machinery, freeze options,
per-group learning rates, mixup/cutmix, recipes, UCF101/HMDB51 splits, curves and progress lines."""
import csv
import os
import shutil

import pytest
import torch
import torchvision

import zoo
from zoo.cli import main
from zoo.engine import TrainConfig
from zoo.engine.finetune import VideoMixup, freeze, param_groups, set_train_mode
from zoo.engine.recipes import RECIPES, recipe_values
from zoo.models import build_with_checkpoint, list_weights, weights_info

IMAGENET = [w for w in list_weights() if w.endswith(".imagenet")]
# torchvision's files (TCPNet's `imagenet` is its covariance-pooling ResNet: tests/test_tcp.py maps its layout)
TORCHVISION = [w for w in IMAGENET if weights_info(w).source == "pytorch/vision"]


def _randomised(module):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for k, v in module.state_dict().items():
            if v.is_floating_point():
                v.copy_(torch.randn(v.shape, generator=g) * 0.05 + (1.0 if k.endswith("running_var") else 0.0))
    return module.eval()


def _torchvision(arch):
    if arch == "googlenet":
        return _randomised(torchvision.models.googlenet(aux_logits=False, init_weights=False))
    return _randomised(getattr(torchvision.models, arch)())


def _arch(record):
    return record.file_names[0].split("-")[0]


# -- ImageNet initialisation ------------------------------------------------------------------
def test_imagenet_records_are_torchvisions_files():
    assert {"tsn_r50.imagenet", "tsm_r50.imagenet", "tsm_r101.imagenet", "pan_lite_r50.imagenet",
            "pan_en_r101.imagenet", "i3d_inception_v1.imagenet", "i3d_r50.imagenet"} <= set(IMAGENET)
    w = weights_info("tsm_r50.imagenet")
    assert w.urls == ("https://download.pytorch.org/models/resnet50-0676ba61.pth",) and w.sha256 == "0676ba61"
    assert w.num_classes == 1000 and w.categories[:2] == ("tench", "goldfish") and not w.results
    assert weights_info("tsm_r50").tag == "sthv2"  # ImageNet is never a model's default


@pytest.mark.parametrize("name", TORCHVISION)
def test_every_imagenet_record_maps_torchvisions_layout(name):
    """Registry-driven: torchvision's state dict of the record's architecture loads into the model
    (every tensor mapped; the ImageNet classifier kept at 1000 classes, replaced for fine-tuning)."""
    record = weights_info(name)
    sd = _torchvision(_arch(record)).state_dict()
    model = build_with_checkpoint(record.model, sd, **record.model_args)
    assert model.num_classes == 1000 and not model.load_report.reinitialised
    with pytest.warns(UserWarning, match="re-initialised for 5 classes"):
        tuned = build_with_checkpoint(record.model, sd, num_classes=5, **record.model_args)
    assert tuned.num_classes == 5 and tuned.load_report.reinitialised


def test_tsn_from_imagenet_is_the_2d_network_averaged_over_frames():
    r50 = _torchvision("resnet50")
    model = build_with_checkpoint("tsn_r50", r50.state_dict()).eval()
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        expected = r50(x[0].transpose(0, 1)).mean(0)
        assert torch.equal(model(x)[0], expected)


def test_inflation_and_stems():
    """I3D-R50 and I3D: each 3D kernel summed over time is the 2D kernel (mean inflation); PAN Lite's
    6-channel stem is the RGB kernel's channel mean on every channel; PA and VAP keep their init."""
    r50, goog = _torchvision("resnet50"), _torchvision("googlenet")
    i3d = build_with_checkpoint("i3d_r50", r50.state_dict())
    assert torch.allclose(i3d.state_dict()["backbone.stem.conv.weight"].sum(2), r50.conv1.weight, atol=1e-6)
    assert torch.allclose(i3d.state_dict()["backbone.res4.2.conv_a.weight"].sum(2), r50.layer3[2].conv1.weight,
                          atol=1e-6)
    assert torch.equal(i3d.fc.weight, r50.fc.weight)
    inception = build_with_checkpoint("i3d_inception_v1", goog.state_dict())
    assert torch.allclose(inception.state_dict()["Mixed_4b.b1b.conv3d.weight"].sum(2),
                          goog.inception4a.branch2[1].conv.weight, atol=1e-6)
    assert torch.equal(inception.logits.conv3d.weight.flatten(1), goog.fc.weight)
    lite = build_with_checkpoint("pan_lite_r50", r50.state_dict())
    stem = lite.backbone.conv1.weight
    assert stem.shape[1] == 6 and torch.equal(stem, r50.conv1.weight.mean(1, keepdim=True).expand_as(stem))
    assert torch.equal(lite.fc.pred.weight, r50.fc.weight)
    fresh = zoo.build("pan_lite_r50", num_classes=1000)
    mapped = zoo.models.pan.checkpoint_filter_fn(r50.state_dict(), fresh)
    own = fresh.state_dict()
    assert all(torch.equal(mapped[k], own[k]) for k in own if k.startswith(("pa.", "fc.tes.")))


@pytest.fixture
def synth_data(tmp_path_factory):
    from zoo.data import synth

    path = tmp_path_factory.mktemp("finetune") / "data"
    synth.generate(str(path), ["moving_right", "moving_left", "rotating_clockwise"], per_class=4, frames=8, size=32, seed=0)
    return path


def test_train_pretrained_imagenet_fine_tunes_from_the_release(synth_data, tmp_path, monkeypatch, capsys):
    """`zoo train tsn_r50 --pretrained imagenet`: the release (fetched through zoo's hub; here a
    fabricated torchvision file) under every layer, the classifier new for the data's 3 classes."""
    r50 = _torchvision("resnet50")
    path = tmp_path / "resnet50-0676ba61.pth"
    torch.save(r50.state_dict(), path)
    monkeypatch.setattr(zoo.models._hub, "fetch_files", lambda record, progress=True: [(path, "0676ba61")])
    out = tmp_path / "run"
    assert main(["train", "tsn_r50", "--pretrained", "imagenet", "--data", str(synth_data), "--out", str(out),
                 "--epochs", "1", "--batch-size", "4", "--frames", "2", "--size", "32", "--lr", "0.01",
                 "--freeze", "backbone", "--no-progress", "--log-every", "1"]) == 0
    text = capsys.readouterr().out
    assert "fine-tuning from tsn_r50.imagenet: loaded 318 tensors; re-initialised classifier" in text
    assert "epoch 1 step 1/3" in text and "epoch 1 step 3/3" in text  # progress lines without a bar
    weights = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    assert torch.equal(weights["backbone.layer4.2.conv3.weight"], r50.layer4[2].conv3.weight)
    assert weights["fc.weight"].shape == (3, 2048)
    assert (out / "curves.png").stat().st_size > 1000
    import importlib.util

    if importlib.util.find_spec("tensorboard"):  # the optional extra; `make test` installs it
        assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    else:
        assert not (out / "tensorboard").exists()
    assert main(["train", "tsn_r50", "--pretrained", "imagenett", "--data", str(synth_data)]) == 2
    assert "did you mean tsn_r50.imagenet" in capsys.readouterr().err


# -- freeze options and learning rates --------------------------------------------------------
def _one_step(model, frozen, lr=0.1):
    set_train_mode(model, frozen)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(param_groups(model, lr, 1e-4), lr=lr, momentum=0.9)
    x = torch.randn(4, 3, 2, 32, 32, generator=torch.Generator().manual_seed(1))
    torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0])).backward()
    opt.step()
    return {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}


def test_freeze_backbone_changes_only_the_classifier():
    model = zoo.build("tsm_r50", num_classes=3, backbone="resnet18", num_segments=2)
    changed = _one_step(model, freeze(model, "backbone"))
    assert changed == {"fc.weight", "fc.bias"}


def test_partial_bn_freezes_every_bn_but_the_first():
    model = zoo.build("tsn_r50", num_classes=3, backbone="resnet18", num_segments=2)
    frozen = freeze(model, "bn")
    changed = _one_step(model, frozen)
    bn = [n for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bn[0] == "backbone.bn1" and len(frozen) == len(bn) - 1
    assert {f"backbone.bn1.{k}" for k in ("weight", "bias", "running_mean", "running_var",
                                          "num_batches_tracked")} <= changed
    assert not any(k.startswith(f"{n}.") for n in bn[1:] for k in changed)  # affine and statistics
    convs = [k for k in model.state_dict() if k.endswith("conv1.weight") or k.endswith("conv2.weight")]
    assert set(convs) <= changed and {"fc.weight", "fc.bias"} <= changed
    ensemble = zoo.build("pan_full_r50", num_classes=3, backbone="resnet18", num_segments=2)
    assert len(freeze(ensemble, "bn")) == sum(isinstance(m, torch.nn.BatchNorm2d) for m in ensemble.modules()) - 2


def test_param_groups_multipliers():
    model = zoo.build("tsn_r50", num_classes=3, backbone="resnet18", num_segments=2)
    groups = param_groups(model, 0.01, 5e-4, head_lr_mult=5, bias_lr_mult=2)
    by_param = {id(p): g for g in groups for p in g["params"]}
    assert (by_param[id(model.fc.weight)]["lr"], by_param[id(model.fc.weight)]["weight_decay"]) == (0.05, 5e-4)
    assert (by_param[id(model.fc.bias)]["lr"], by_param[id(model.fc.bias)]["weight_decay"]) == (0.1, 0.0)
    bn = model.backbone.bn1
    assert by_param[id(bn.weight)]["lr"] == 0.01 and by_param[id(bn.weight)]["weight_decay"] == 0.0
    conv = model.backbone.conv1.weight
    assert by_param[id(conv)]["lr"] == 0.01 and by_param[id(conv)]["weight_decay"] == 5e-4
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_video_mixup_and_cutmix():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 16, 16)
    y = torch.tensor([0, 1, 2, 1])
    cut = VideoMixup(0.0, 1.0, 0.1, 3)
    mixed, target = cut(x.clone(), y)
    assert mixed.shape == x.shape and torch.allclose(target.sum(1), torch.ones(4))
    changed = (mixed != x).any(1)  # [B, T, H, W]: the same box on every frame
    assert changed.any() and all(torch.equal(changed[:, t], changed[:, 0]) for t in range(5))
    odd, soft = VideoMixup(0.8, 0.0, 0.1, 3)(x[:3].clone(), y[:3])
    assert torch.equal(odd, x[:3]) and torch.allclose(soft.max(1).values, torch.full((3,), 0.9 + 0.1 / 3))


# -- recipes ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(RECIPES))
def test_recipes_are_valid_configs(name):
    cfg = TrainConfig(model="tsm_r50", data="x")
    for key, value in recipe_values(name, "tsm_r50").items():
        setattr(cfg, key, value)
    cfg.validate()
    assert RECIPES[name].source and RECIPES[name].summary


def test_recipe_precedence_and_listing(capsys, tmp_path):
    import yaml

    with pytest.raises(ValueError, match="did you mean tsm"):
        recipe_values("tms", "tsm_r50")
    assert main(["train", "--list-recipes"]) == 0
    listing = capsys.readouterr().out
    assert all(f"{name}: " in listing for name in RECIPES)
    small = recipe_values("small-from-scratch", "i3d_r50")
    assert small["model_args"] == {"depth": 26, "train_crop_size": 32} and small["frames"] == 4
    # defaults < recipe (named in the config file here) < config file < flags < --set
    from zoo.cli import build_parser
    from zoo.cli.train import resolve_config

    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump({"recipe": "tsm", "lr": 0.005, "epochs": 7}))
    args = build_parser().parse_args(["train", "tsm_r50", "--config", str(cfg_path), "--data", "d", "--epochs", "3",
                                      "--set", "dropout=0.3"])
    cfg = resolve_config(args)
    assert (cfg.recipe, cfg.pretrained, cfg.head_lr_mult, cfg.lr_steps) == ("tsm", "imagenet", 5.0, [20, 40])
    assert (cfg.lr, cfg.epochs, cfg.dropout) == (0.005, 3, 0.3)
    (tmp_path / "w.pt").write_bytes(b"a checkpoint")
    weights = build_parser().parse_args(["train", "tsm_r50", "--recipe", "tsm", "--data", "d", "--weights",
                                         str(tmp_path / "w.pt")])
    assert resolve_config(weights).pretrained is None  # a checkpoint on the command line replaces the recipe's


# -- UCF101 / HMDB51 --------------------------------------------------------------------------
def _videos(synth_data):
    return {c: sorted((synth_data / "videos" / c).glob("*.mp4")) for c in ("moving_right", "moving_left",
                                                                           "rotating_clockwise")}


def _ucf101(synth_data, root):
    """UCF101 as it unpacks, its videos SynthMotion clips (PyAV reads the content, not the suffix)."""
    classes = {"MovingRight": "moving_right", "MovingLeft": "moving_left", "RotatingCw": "rotating_clockwise"}
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(classes, 1)))
    train, test = [], []
    for i, (cls, src) in enumerate(classes.items(), 1):
        (root / "UCF-101" / cls).mkdir(parents=True)
        for g, video in enumerate(_videos(synth_data)[src][:4], 1):
            name = f"v_{cls}_g{g:02d}_c01.avi"
            shutil.copy(video, root / "UCF-101" / cls / name)
            listed = name.replace("MovingLeft", "Movingleft")  # the lists' own spelling may differ in case
            (train if g <= 3 else test).append((f"{cls}/{listed}", i))
    for fold in (1, 2, 3):
        (lists / f"trainlist0{fold}.txt").write_text("".join(f"{p} {i}\n" for p, i in train))
        (lists / f"testlist0{fold}.txt").write_text("".join(f"{p}\n" for p, _ in test))
    return root


def test_ucf101_and_hmdb51_splits(synth_data, tmp_path):
    from zoo.data import build_dataset

    info = zoo.model_info("tsn_r50")
    ucf = _ucf101(synth_data, tmp_path / "ucf")
    train, test = build_dataset(str(ucf), info, "train", fold=1), build_dataset(str(ucf), info, "val", fold=2)
    assert train.class_names == ["MovingRight", "MovingLeft", "RotatingCw"] and len(train) == 9 and len(test) == 3
    assert [r.label for r in test.records] == [0, 1, 2] and all(os.path.isfile(r.path) for r in test.records)
    os.remove(test.records[2].path)
    with pytest.raises(Exception, match="v_RotatingCw_g04_c01.avi"):  # listed, missing: named when read
        build_dataset(str(ucf), info, "val", fold=1)[2]
    # HMDB51: class folders and <class>_test_splitN.txt, 1 train / 2 test / 0 unused
    hmdb = tmp_path / "hmdb"
    (hmdb / "testTrainMulti_7030_splits").mkdir(parents=True)
    for cls, videos in _videos(synth_data).items():
        (hmdb / cls).mkdir()
        lines = []
        for k, video in enumerate(videos[:4]):
            shutil.copy(video, hmdb / cls / f"{cls}_{k}.avi")
            lines.append(f"{cls}_{k}.avi {(1, 1, 2, 0)[k]}\n")
        for fold in (1, 2, 3):
            (hmdb / "testTrainMulti_7030_splits" / f"{cls}_test_split{fold}.txt").write_text("".join(lines))
    train, test = build_dataset(str(hmdb), info, "train", fold=3), build_dataset(str(hmdb), info, "val")
    assert train.class_names == sorted(_videos(synth_data)) and len(train) == 6 and len(test) == 3
    assert [os.path.basename(r.path) for r in test.records] == [f"{c}_2.avi" for c in sorted(_videos(synth_data))]
    with pytest.raises(ValueError, match="--split N takes a UCF101 or HMDB51 root"):
        build_dataset(str(synth_data), info, "val", fold=1)


@pytest.mark.slow
def test_train_on_a_ucf101_split_evaluates_exactly_its_test_list(synth_data, tmp_path):
    """`zoo train --data UCF_ROOT --split 2`; then `zoo eval --run-dir` on the run's split; a bad
    video under --on-error skip is listed with its reason in the run directory."""
    ucf = _ucf101(synth_data, tmp_path / "ucf")
    bad = ucf / "UCF-101" / "MovingRight" / "v_MovingRight_g01_c01.avi"
    bad.write_bytes(b"not a video")
    out = tmp_path / "run"
    assert main(["train", "tsm_r50", "--data", str(ucf), "--split", "2", "--out", str(out), "--recipe",
                 "small-from-scratch", "--epochs", "2", "--frames", "2", "--on-error", "skip",
                 "--no-progress"]) == 0
    evaluated = torch.load(out / "eval" / "logits.pt", weights_only=True)["paths"]
    listed = (ucf / "ucfTrainTestlist" / "testlist02.txt").read_text().split()
    assert sorted(os.path.basename(p).lower() for p in evaluated) == sorted(os.path.basename(p).lower() for p in listed)
    with open(out / "skipped.csv") as f:
        [skipped] = list(csv.DictReader(f))
    assert skipped["path"].endswith("v_MovingRight_g01_c01.avi") and skipped["epochs"] == "1 2" and skipped["error"]
    history_png = (out / "curves.png").read_bytes()
    assert history_png[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["eval", "--run-dir", str(out), "--out", str(tmp_path / "ev"), "--no-progress"]) == 0


# -- zoo audit ------------------------------------------------------------------------------------
def _appearance_only(root, per_class=20, frames=8, size=32):
    """Classes told apart by colour alone: a blob of the class colour at a new random place in every
    frame (frame order carries nothing), written as root/<split>/<class>/*.mp4."""
    import av
    import numpy as np

    colours = {"red": (220, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 220), "white": (230, 230, 230)}
    rng = np.random.default_rng(0)
    for cls, colour in colours.items():
        for k in range(per_class):
            folder = root / ("val" if k % 4 == 0 else "train") / cls
            folder.mkdir(parents=True, exist_ok=True)
            with av.open(str(folder / f"{cls}_{k}.mp4"), "w") as out:
                stream = out.add_stream("libx264", rate=15)
                stream.width = stream.height = size
                stream.pix_fmt = "yuv420p"
                for _ in range(frames):
                    img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
                    y, x = rng.integers(0, size - 12, 2)
                    img[y:y + 12, x:x + 12] = colour
                    for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                        out.mux(packet)
                for packet in stream.encode():
                    out.mux(packet)
    return root


def test_audit_pairs_videos_by_identity_not_position():
    """A video skipped in one evaluation (``--on-error skip``) leaves the pair; the others stay matched."""
    import numpy as np

    from zoo.benchmark.audit import _correct, _paired, paired_difference, wilson_interval
    from zoo.engine.harness import EvalResult

    def result(indices, right):
        logits = torch.tensor([[[1.0, 0.0]] if r else [[0.0, 1.0]] for r in right])
        return EvalResult({}, logits, torch.zeros(len(right), dtype=torch.long), indices,
                          [f"v{i}.mp4" for i in indices])

    a = _correct(result([0, 1, 2, 3], [True, True, False, False]))
    b = _correct(result([0, 2, 3], [True, False, False]))  # video 1 skipped: by position, 2 would meet 1
    x, y = _paired(a, b)
    assert x.tolist() == y.tolist() == [True, False, False]
    d = paired_difference(x, y)
    assert d["points"] == 0 and d["ci95"] == [0.0, 0.0]
    assert wilson_interval(5, 10) == [23.66, 76.34] and wilson_interval(0, 0) == [0.0, 100.0]
    assert paired_difference(np.ones(20, bool), np.zeros(20, bool))["points"] == 100


@pytest.mark.slow
def test_audit_says_motion_matters_on_synthmotion_and_not_on_appearance(tmp_path, capsys):
    import json

    from zoo.data import synth

    motion = tmp_path / "motion"
    synth.generate(str(motion), ["moving_right", "moving_left", "rotating_clockwise", "rotating_counterclockwise"],
                   per_class=24, frames=16, size=32, seed=0, difficulty="easy")
    assert main(["audit", str(motion), "--out", str(tmp_path / "a1"), "--epochs", "8", "--no-progress"]) == 0
    doc = json.loads((tmp_path / "a1" / "audit.json").read_text())
    assert doc["motion_matters"] is True and doc["order_matters"] is True and doc["conclusive"]
    temporal = doc["models"]["temporal"]
    assert temporal["differences"]["normal_minus_shuffled"]["ci95"][0] > 0 and temporal["videos"] == 24
    assert set(temporal["orders"]) == {"normal", "reversed", "shuffled", "single"}
    assert "Motion matters" in capsys.readouterr().out
    assert all(r["synthmotion_shuffle_drop"] is None or r["synthmotion_shuffle_drop"] >= 10
               for r in doc["recommendation"])

    still = _appearance_only(tmp_path / "still")
    assert main(["audit", str(still), "--out", str(tmp_path / "a2"), "--epochs", "8", "--no-progress"]) == 0
    doc = json.loads((tmp_path / "a2" / "audit.json").read_text())
    assert doc["conclusive"] and doc["motion_matters"] is False and doc["order_matters"] is False
    shuffled = doc["models"]["temporal"]["differences"]["normal_minus_shuffled"]["ci95"]
    assert shuffled[0] <= 0 <= shuffled[1]
    assert "does not measurably matter" in capsys.readouterr().out
