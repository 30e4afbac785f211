"""MMAction2 checkpoints: key maps (TSN/TSM, I3D-R50, SlowFast, R(2+1)D-34), the architecture
options its releases need, and mmengine's ``meta`` objects read as inert placeholders.

Two kinds of check: layouts written from MMAction2's documented module names (ConvModule =
``.conv`` + ``.bn``, ``TemporalShift`` = ``.net``, ``fc_cls``, ``SlowFastHead``'s
``cat((x_fast, x_slow))``) round-trip and match its published parameter counts and FLOPs; and
parity with MMAction2's own model code (1.2.0 with mmengine 0.10.7 and mmcv-lite 2.1.0, installed
by ``make test`` without their dependencies), built as the release configs build it."""
import os
import re

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.benchmark.latency import randomize_bn_stats
from zoo.models import read_checkpoint
from zoo.models.slowfast import slow_indices


class HistoryBuffer:  # stands in for mmengine's message-hub objects kept in a checkpoint's meta
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def _mmengine_file(path, state_dict):
    torch.save({"meta": {"mmengine_version": "0.10.7", "dataset_meta": None, "seed": 0,
                         "message_hub": HistoryBuffer()}, "state_dict": state_dict,
                "message_hub": HistoryBuffer()}, path)
    return str(path)


def _logits(model, x):
    with torch.no_grad():
        return model.eval()(x)


def _block(key: str) -> str:
    for ours, theirs in (("conv_a", "conv1.conv"), ("bn_a", "conv1.bn"), ("conv_b", "conv2.conv"),
                         ("bn_b", "conv2.bn"), ("conv_c", "conv3.conv"), ("bn_c", "conv3.bn"),
                         ("shortcut.conv", "downsample.conv"), ("shortcut.bn", "downsample.bn")):
        key = key.replace(f".{ours}.", f".{theirs}.")
    return key


def _pathway(key: str, ours: str, theirs: str) -> str:
    """Our pathway key -> MMAction2 ResNet3d's (``conv1`` = stem ConvModule, ``layerN`` = resN+1)."""
    key = key.replace(f"{ours}.stem.", f"{theirs}.conv1.")
    key = re.sub(rf"^{ours}\.res(\d)\.", lambda m: f"{theirs}.layer{int(m.group(1)) - 1}.", key)
    return _block(key)


def mma_i3d(model):
    out = {}
    for k, v in model.state_dict().items():
        out["cls_head.fc_cls." + k[3:] if k.startswith("fc.") else _pathway(k, "backbone", "backbone")] = v
    return out


def mma_slowfast(model):
    out = {}
    for k, v in model.state_dict().items():
        if k.startswith("laterals."):
            i = int(k.split(".")[1])
            k = (f"backbone.slow_path.conv1_lateral.{k.split('.', 2)[2]}" if i == 0
                 else f"backbone.slow_path.layer{i}_lateral.{k.split('.', 2)[2]}")
        elif k.startswith("slow."):
            k = _pathway(k, "slow", "backbone.slow_path")
        elif k.startswith("fast."):
            k = _pathway(k, "fast", "backbone.fast_path")
        elif k == "fc.weight":  # SlowFastHead: cat((x_fast, x_slow))
            fast = model.fast.num_features
            v = torch.cat([v[:, -fast:], v[:, :-fast]], 1)
            k = "cls_head.fc_cls.weight"
        elif k == "fc.bias":
            k = "cls_head.fc_cls.bias"
        out[k] = v
    return out


def mma_tsm(model):
    """ResNetTSM: conv1/bn1 -> conv1.conv/conv1.bn; shifted conv1 of each block -> conv1.conv.net."""
    from zoo.models.tsm import shifted_blocks

    shifted = {f"{n}.conv1" for n, place in shifted_blocks(model)}
    out = {}
    for k, v in model.state_dict().items():
        if k.startswith("fc."):
            out["cls_head.fc_cls." + k[3:]] = v
            continue
        k2 = re.sub(r"^backbone\.conv1\.", "backbone.conv1.conv.", k)
        k2 = re.sub(r"^backbone\.bn1\.", "backbone.conv1.bn.", k2)
        k2 = re.sub(r"^(backbone\.layer\d\.\d+)\.conv(\d)\.", r"\1.conv\2.conv.", k2)
        k2 = re.sub(r"^(backbone\.layer\d\.\d+)\.bn(\d)\.", r"\1.conv\2.bn.", k2)
        k2 = re.sub(r"^(backbone\.layer\d\.\d+\.downsample)\.0\.", r"\1.conv.", k2)
        k2 = re.sub(r"^(backbone\.layer\d\.\d+\.downsample)\.1\.", r"\1.bn.", k2)
        if k.endswith(".conv1.weight") and k[:-len(".weight")] in shifted:
            k2 = k2.replace(".conv1.conv.weight", ".conv1.conv.net.weight")
        out[k2] = v
    return out


def test_meta_objects_load_as_inert_placeholders(tmp_path, capfd):
    path = _mmengine_file(tmp_path / "m.pth", {"w": torch.ones(2)})
    ckpt = read_checkpoint(path)
    assert torch.equal(ckpt["state_dict"]["w"], torch.ones(2)) and ckpt["meta"]["mmengine_version"] == "0.10.7"
    assert "not loaded" in repr(ckpt["message_hub"]) and "never run" not in capfd.readouterr().out


@pytest.mark.parametrize("name", ["tsn_r50", "tsm_r50"])
def test_tsn_tsm_layout(tmp_path, name):
    src = randomize_bn_stats(zoo.build(name, num_classes=7, backbone="resnet18")).eval()
    sd = mma_tsm(src)
    assert "backbone.conv1.conv.weight" in sd and "cls_head.fc_cls.weight" in sd
    assert ("backbone.layer1.0.conv1.conv.net.weight" in sd) == (name == "tsm_r50")
    path = _mmengine_file(tmp_path / "mma.pth", sd)
    dst = zoo.build(name, backbone="resnet18", weights=path)
    x = torch.randn(1, 3, 8, 32, 32)
    assert dst.num_classes == 7 and torch.equal(_logits(dst, x), _logits(src, x))


def test_i3d_options_are_mmaction2s_strides_and_global_pool():
    model = zoo.build("i3d_r50", num_classes=5, **zoo.weights_info("i3d_r50.kinetics400_mmaction2").model_args)
    stem = model.backbone.stem
    assert stem.conv.stride == (2, 2, 2) and stem.pool_stride == (2, 2, 2)
    feats = model.eval().forward_features(torch.randn(1, 3, 32, 64, 64))
    assert feats.shape[2] == 4  # 32 frames / (conv 2 x pool1 2 x pool2 2), as MMAction2's ResNet3d
    with torch.no_grad():
        torch.testing.assert_close(model.forward_head(feats, pre_logits=True), feats.mean((2, 3, 4)))


def test_i3d_layout_and_wrong_options(tmp_path):
    args = zoo.weights_info("i3d_r50.kinetics400_mmaction2").model_args
    src = randomize_bn_stats(zoo.build("i3d_r50", num_classes=7, depth=26, **args)).eval()
    path = _mmengine_file(tmp_path / "i3d.pth", mma_i3d(src))
    dst = zoo.build("i3d_r50", depth=26, weights=path, **args)
    x = torch.randn(1, 3, 16, 64, 64)
    assert torch.equal(_logits(dst, x), _logits(src, x))
    with pytest.raises(ValueError, match="stem_strides=.2, 2. and train_crop_size=0"):
        zoo.build("i3d_r50", depth=26, weights=path)


def test_slowfast_options_are_mmaction2s():
    args = zoo.weights_info("slowfast_8x8_r50.kinetics400_mmaction2").model_args
    model = zoo.build("slowfast_8x8_r50", num_classes=5, **args)
    assert all(lat.bn is None for lat in model.laterals)  # a plain conv, no BN / ReLU
    x = torch.arange(32.0).view(1, 1, 32, 1, 1)
    nearest = F.interpolate(x, scale_factor=(1 / 4, 1, 1), mode="nearest").flatten().long()  # MMAction2's slow input
    assert torch.equal(slow_indices(32, 4, "strided"), nearest)
    assert not torch.equal(slow_indices(32, 4), nearest)  # PySlowFast's linspace differs


@pytest.mark.parametrize("name", ["slowfast_4x16_r50", "slowfast_8x8_r50"])
def test_slowfast_layout_head_order_and_wrong_options(tmp_path, name):
    args = dict(zoo.weights_info(f"{name}.kinetics400_mmaction2").model_args)
    src = randomize_bn_stats(zoo.build(name, num_classes=7, depth=26, **args)).eval()
    sd = mma_slowfast(src)
    assert "backbone.slow_path.layer3_lateral.conv.weight" in sd and "backbone.fast_path.conv1.conv.weight" in sd
    path = _mmengine_file(tmp_path / "sf.pth", sd)
    dst = zoo.build(name, depth=26, weights=path, **args)
    x = torch.randn(1, 3, 32, 64, 64)
    assert torch.equal(_logits(dst, x), _logits(src, x))
    with pytest.raises(ValueError, match="lateral_norm=False"):
        zoo.build(name, depth=26, weights=path)


def test_records_name_mmaction2_files_with_their_hash():
    names = zoo.list_weights("*mmaction2")
    assert {n.split(".")[0] for n in names} >= {"tsn_r50", "tsm_r50", "i3d_r50", "slowfast_4x16_r50",
                                                 "slowfast_8x8_r50"}
    for n in names:
        w = zoo.weights_info(n)
        assert w.urls[0].startswith("https://download.openmmlab.com/mmaction/v1.0/recognition/")
        assert re.fullmatch(r"[0-9a-f]{8}", w.sha256) and w.urls[0].endswith(f"-{w.sha256}.pth")


def mma_r2plus1d(model):
    """ResNet2Plus1d: ConvModule(conv=Conv2plus1d(conv_s, bn_s, conv_t), bn), stem = conv1."""
    out = {}
    for k, v in model.state_dict().items():
        k = re.sub(r"^stem\.0\.", "backbone.conv1.conv.conv_s.", k)
        k = re.sub(r"^stem\.1\.", "backbone.conv1.conv.bn_s.", k)
        k = re.sub(r"^stem\.3\.", "backbone.conv1.conv.conv_t.", k)
        k = re.sub(r"^stem\.4\.", "backbone.conv1.bn.", k)
        k = re.sub(r"^(layer\d\.\d+\.(?:conv\d|downsample))\.0\.0\.", r"backbone.\1.conv.conv_s.", k)
        k = re.sub(r"^(layer\d\.\d+\.(?:conv\d|downsample))\.0\.1\.", r"backbone.\1.conv.bn_s.", k)
        k = re.sub(r"^(layer\d\.\d+\.(?:conv\d|downsample))\.0\.3\.", r"backbone.\1.conv.conv_t.", k)
        k = re.sub(r"^(layer\d\.\d+\.(?:conv\d|downsample))\.1\.", r"backbone.\1.bn.", k)
        k = re.sub(r"^fc\.", "cls_head.fc_cls.", k)
        out[k] = v
    return out


def test_r2plus1d_design_and_layout(tmp_path):
    args = zoo.weights_info("r2plus1d_34.kinetics400_mmaction2").model_args
    model = zoo.build("r2plus1d_34", num_classes=7, layers=(1, 1, 1, 1), **args)
    assert model.stem[0].out_channels == 83 and isinstance(model.stem[6], torch.nn.MaxPool3d)  # 3x7x7 rule, pool
    assert model.stem[1].eps == 1e-5 and model.stem[4].eps == 1e-3  # Conv2plus1d's own bn_s; the model's BN
    ds = model.layer2[0].downsample  # Conv2plus1d(k=1): 64 -> 54 -> 128, BN + ReLU inside
    assert [m.out_channels for m in ds[0] if isinstance(m, torch.nn.Conv3d)] == [54, 128]
    assert ds[0][0].stride == (1, 2, 2) and ds[0][3].stride == (2, 1, 1)
    src = randomize_bn_stats(model).eval()
    sd = mma_r2plus1d(src)
    assert "backbone.layer2.0.downsample.conv.bn_s.running_var" in sd and "backbone.conv1.conv.conv_t.weight" in sd
    path = _mmengine_file(tmp_path / "r21d.pth", sd)
    dst = zoo.build("r2plus1d_34", layers=(1, 1, 1, 1), weights=path, **args)
    x = torch.randn(1, 3, 8, 64, 64)
    assert torch.equal(_logits(dst, x), _logits(src, x))
    with pytest.raises(ValueError, match="design='mmaction2'"):
        zoo.build("r2plus1d_34", layers=(1, 1, 1, 1), weights=path)


@pytest.mark.slow
@pytest.mark.parametrize("tag,params_m,gflops,frames", [
    # open-mmlab/mmaction2 configs/recognition/*/metafile.yml (Parameters, FLOPs; fvcore-style, 256 px)
    ("r2plus1d_34.kinetics400_mmaction2", 63.8, 53.1, 8),
    ("i3d_r50.kinetics400_mmaction2", 28.0, 43.5, 32),
    ("slowfast_4x16_r50.kinetics400_mmaction2", 34.5, 36.3, 32),
    ("slowfast_8x8_r50.kinetics400_mmaction2", 34.6, 66.1, 32),
])
def test_mmaction2_designs_match_its_published_cost(tag, params_m, gflops, frames):
    """The architecture options reproduce MMAction2's own parameter counts and FLOPs (within 1 %)."""
    from zoo.flops import count_flops, count_params

    w = zoo.weights_info(tag)
    model = zoo.build(w.model, **w.model_args).eval()
    assert round(count_params(model) / 1e6, 1) == params_m
    assert count_flops(model, (1, 3, frames, 256, 256)).gflops == pytest.approx(gflops, rel=0.01)


# -- parity with MMAction2's own model code (a test-only peer; skipped where it does not import) --
def _mmaction2_models():
    """``mmaction.models``: MMAction2 1.2.0's wheel lacks ``localizers/drn`` (imported by the
    package ``__init__``); a stub stands in for it (no recognizer here uses it)."""
    import sys
    import types

    for name in ("mmaction.models.localizers.drn", "mmaction.models.localizers.drn.drn"):
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.__path__, stub.DRN = [], type("DRN", (), {})
            sys.modules[name] = stub
    models = pytest.importorskip("mmaction.models")
    from mmengine.registry import init_default_scope

    init_default_scope("mmaction")  # mmcv's conv builder finds Conv2plus1d in MMAction2's registry
    return models


def _their_state(backbone, head):
    sd = {f"backbone.{k}": v for k, v in backbone.state_dict().items()}
    sd.update({f"cls_head.{k}": v for k, v in head.state_dict().items()})
    return sd


def _parity(ours, theirs, x):
    with torch.no_grad():
        a, b = ours.eval()(x), theirs(x)
    assert (a - b).abs().max() <= 1e-4 * b.abs().max(), (a - b).abs().max()


def _their_3d(backbone, head):
    randomize_bn_stats(backbone)
    backbone.eval(), head.eval()
    return backbone, head, lambda x: head(backbone(x))


@pytest.mark.slow
@pytest.mark.parametrize("tag", ["i3d_r50.kinetics400_mmaction2", "slowfast_4x16_r50.kinetics400_mmaction2",
                                 "slowfast_8x8_r50.kinetics400_mmaction2", "r2plus1d_34.kinetics400_mmaction2"])
def test_parity_with_mmaction2_model_code(tag, tmp_path):
    """MMAction2's backbone + head, as the release configs build them, with random weights: the
    same file through zoo's key map gives the same logits (<= 1e-4 relative)."""
    m = _mmaction2_models()
    w = zoo.weights_info(tag)
    if w.model == "i3d_r50":
        backbone = m.ResNet3d(depth=50, pretrained=None, pretrained2d=False, conv1_kernel=(5, 7, 7),
                              conv1_stride_t=2, pool1_stride_t=2,
                              inflate=((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0)), zero_init_residual=False)
        head, frames = m.I3DHead(num_classes=400, in_channels=2048), 32
    elif w.model.startswith("slowfast"):
        rate = 8 if "4x16" in w.model else 4
        slow = dict(type="resnet3d", depth=50, pretrained=None, lateral=True, conv1_kernel=(1, 7, 7),
                    dilations=(1, 1, 1, 1), conv1_stride_t=1, pool1_stride_t=1, inflate=(0, 0, 1, 1),
                    fusion_kernel=5 if rate == 8 else 7)
        fast = dict(type="resnet3d", depth=50, pretrained=None, lateral=False, base_channels=8,
                    conv1_kernel=(5, 7, 7), conv1_stride_t=1, pool1_stride_t=1)
        backbone = m.ResNet3dSlowFast(resample_rate=rate, speed_ratio=rate, channel_ratio=8, slow_pathway=slow,
                                      fast_pathway=fast)
        head, frames = m.SlowFastHead(num_classes=400, in_channels=2304), 32
    else:
        backbone = m.ResNet2Plus1d(depth=34, pretrained=None, pretrained2d=False, conv_cfg=dict(type="Conv2plus1d"),
                                   norm_cfg=dict(type="BN3d", requires_grad=True, eps=1e-3), conv1_kernel=(3, 7, 7),
                                   conv1_stride_t=1, pool1_stride_t=1, inflate=(1, 1, 1, 1),
                                   spatial_strides=(1, 2, 2, 2), temporal_strides=(1, 2, 2, 2),
                                   zero_init_residual=False)
        head, frames = m.I3DHead(num_classes=400, in_channels=512), 8
    backbone, head, theirs = _their_3d(backbone, head)
    path = _mmengine_file(tmp_path / w.file_names[0], _their_state(backbone, head))
    ours = zoo.build(w.model, weights=path, **w.model_args)
    _parity(ours, theirs, torch.randn(1, 3, frames, 64, 64))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tsn_r50", "tsm_r50"])
def test_parity_with_mmaction2_2d_recognizers(name, tmp_path):
    m = _mmaction2_models()
    if name == "tsm_r50":
        backbone = m.ResNetTSM(depth=50, pretrained=None, num_segments=8, shift_div=8)
        head = m.TSMHead(num_classes=400, in_channels=2048, num_segments=8, is_shift=True)
    else:
        backbone = m.ResNet(depth=50, pretrained=None)
        head = m.TSNHead(num_classes=400, in_channels=2048)
    randomize_bn_stats(backbone)
    backbone.eval(), head.eval()

    def theirs(x):  # Recognizer2D: [B, 3, T, H, W] -> frames as a batch [B*T, 3, H, W]
        b, c, t, h, w = x.shape
        return head(backbone(x.transpose(1, 2).reshape(b * t, c, h, w)), num_segs=t)

    path = _mmengine_file(tmp_path / "mma.pth", _their_state(backbone, head))
    _parity(zoo.build(name, weights=path), theirs, torch.randn(1, 3, 8, 64, 64))
