"""R(2+1)D: torchvision parity, the two mid-channel rules, VMZ (PyTorch and Caffe2) checkpoints."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from torchvision.models.video import R2Plus1D_18_Weights, r2plus1d_18 as tv_r2plus1d_18
from torchvision.models.video.resnet import BasicBlock as TVBasicBlock
from torchvision.models.video.resnet import Conv2Plus1D as TVConv2Plus1D
from torchvision.models.video.resnet import R2Plus1dStem as TVStem
from torchvision.models.video.resnet import VideoResNet as TVVideoResNet

import zoo
from zoo.benchmark.latency import randomize_bn_stats
from zoo.flops import count_flops, count_params
from zoo.models import load_state_dict_checked
from zoo.models.r2plus1d import R2Plus1D, caffe2_blob_names, checkpoint_filter_fn


def _logits(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)


@pytest.fixture(scope="module")
def clip():
    return torch.randn(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(1))


def test_r2plus1d_18_loads_torchvision_strictly_and_matches(tmp_path, clip):
    torch.manual_seed(0)
    tv = randomize_bn_stats(tv_r2plus1d_18(weights=None), affine=True)
    path = tmp_path / "r2plus1d_18-tv.pth"
    torch.save(tv.state_dict(), path)
    ours = zoo.build("r2plus1d_18", weights=path)
    assert ours.load_report.loaded == sorted(tv.state_dict()) and not ours.load_report.reinitialised
    assert list(ours.state_dict()) == list(tv.state_dict())  # same keys, same order
    torch.testing.assert_close(_logits(ours, clip), _logits(tv, clip), rtol=0, atol=1e-5)


def test_r2plus1d_18_params_and_conv_flops_match_torchvision_meta():
    meta = R2Plus1D_18_Weights.KINETICS400_V1.meta
    model = zoo.build("r2plus1d_18")
    assert count_params(model) == meta["num_params"]
    # torchvision's `_ops` counts convolutions only; fvcore adds BN (0.126 G) on top
    report = count_flops(model, (1, 3, 16, 112, 112))
    assert report.by_operator["conv"] / 1e9 == pytest.approx(meta["_ops"], rel=1e-4)
    assert report.gflops == pytest.approx(40.645, rel=1e-3)


def _mids(model):
    """Mid widths of (conv1, conv2) of every block, by key."""
    return {f"layer{s}.{j}": (b.conv1[0][0].out_channels, b.conv2[0][0].out_channels)
            for s in range(1, 5) for j, b in enumerate(getattr(model, f"layer{s}"))}


def test_mid_channel_rules():
    tv_rule = _mids(R2Plus1D(layers=(2, 2, 2, 2), mid_channels="torchvision"))
    paper = _mids(R2Plus1D(layers=(2, 2, 2, 2), mid_channels="paper"))
    # torchvision: once per block, reused by conv2 (reference notes §3.1, measured)
    assert tv_rule["layer1.0"] == (144, 144)
    assert tv_rule["layer2.0"] == (230, 230) and tv_rule["layer2.1"] == (288, 288)
    assert tv_rule["layer3.0"] == (460, 460) and tv_rule["layer4.0"] == (921, 921)
    # paper/VMZ: conv2 of a downsampling block recomputed from (planes, planes)
    assert paper["layer2.0"] == (230, 288) and paper["layer3.0"] == (460, 576) and paper["layer4.0"] == (921, 1152)
    assert {k: v for k, v in paper.items() if not k.endswith(".0") or k == "layer1.0"} == \
        {k: v for k, v in tv_rule.items() if not k.endswith(".0") or k == "layer1.0"}
    with pytest.raises(ValueError, match="mid_channels must be one of"):
        R2Plus1D(mid_channels="vmz")


def _vmz_reference_34():
    """VMZ's R(2+1)D-34 as the IG-65M port builds it from torchvision parts: torchvision's
    VideoResNet with the paper widths restored in the downsampling blocks' conv2, BN eps 1e-3."""
    model = TVVideoResNet(block=TVBasicBlock, conv_makers=[TVConv2Plus1D] * 4, layers=[3, 4, 6, 3], stem=TVStem)
    for stage, c in ((model.layer2, 128), (model.layer3, 256), (model.layer4, 512)):
        stage[0].conv2[0] = TVConv2Plus1D(c, c, (c * c * 27) // (c * 9 + 3 * c))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.eps = 1e-3
    return model


def test_r2plus1d_34_loads_vmz_pytorch_checkpoint(tmp_path, clip):
    torch.manual_seed(0)
    ref = randomize_bn_stats(_vmz_reference_34(), affine=True)
    path = tmp_path / "r2plus1d_34_clip8_ft_kinetics.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}}, path)
    ours = zoo.build("r2plus1d_34", weights=path)
    assert count_params(ours) == count_params(ref)
    torch.testing.assert_close(_logits(ours, clip), _logits(ref, clip), rtol=0, atol=1e-5)


def test_mid_rule_mismatch_names_the_fix():
    tv_layout = R2Plus1D(layers=(3, 4, 6, 3), mid_channels="torchvision").state_dict()
    with pytest.raises(ValueError, match="mid_channels='torchvision'"):
        checkpoint_filter_fn(tv_layout, zoo.build("r2plus1d_34"))
    vmz_layout = zoo.build("r2plus1d_34").state_dict()
    with pytest.raises(ValueError, match="mid_channels='paper'"):
        checkpoint_filter_fn(vmz_layout, R2Plus1D(layers=(3, 4, 6, 3)))


def test_caffe2_blob_names_follow_vmz_numbering():
    model = zoo.build("r2plus1d_34")
    names = caffe2_blob_names(model)
    own = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    assert sorted(names) == sorted(own) and len(set(names.values())) == len(names)
    # blocks are numbered globally: layer2 starts at comp_3, layer3 at comp_7, layer4 at comp_13
    assert names["stem.0.weight"] == "conv1_middle_w" and names["stem.4.running_var"] == "conv1_spatbn_relu_riv"
    assert names["layer1.0.conv1.0.0.weight"] == "comp_0_conv_1_middle_w"
    assert names["layer2.0.conv2.0.3.weight"] == "comp_3_conv_2_w"
    assert names["layer3.0.downsample.0.weight"] == "shortcut_projection_7_w"
    assert names["layer4.2.conv2.1.weight"] == "comp_15_spatbn_2_s"
    assert names["layer4.0.conv1.0.1.bias"] == "comp_13_spatbn_1_middle_b"
    assert names["fc.weight"] == "last_out_L400_w"


def test_caffe2_blob_round_trip(clip):
    torch.manual_seed(0)
    small = dict(num_classes=7, layers=(1, 2, 1, 1))  # VMZ widths and BN, shallower for speed
    src = randomize_bn_stats(zoo.build("r2plus1d_34", **small), affine=True)
    names = caffe2_blob_names(src)
    blobs = {names[k]: v.numpy().copy() for k, v in src.state_dict().items() if k in names}
    assert names["layer3.0.downsample.0.weight"] == "shortcut_projection_3_w"
    dst = zoo.build("r2plus1d_34", **small)
    report = load_state_dict_checked(dst, checkpoint_filter_fn({"blobs": blobs}, dst))
    assert not report.reinitialised
    torch.testing.assert_close(_logits(dst, clip), _logits(src, clip), rtol=0, atol=0)
    # a 400-class Caffe2 classifier into a 7-class model: head re-initialised, the rest loads
    del blobs["last_out_L7_w"], blobs["last_out_L7_b"]
    blobs["last_out_L400_w"] = np.zeros((400, 512), np.float32)
    blobs["last_out_L400_b"] = np.zeros(400, np.float32)
    report = load_state_dict_checked(dst, checkpoint_filter_fn({"blobs": blobs}, dst))
    assert sorted(report.reinitialised) == ["fc.bias", "fc.weight"]


def test_any_clip_length_and_feature_shapes():
    model = zoo.build("r2plus1d_18", num_classes=5).eval()
    with torch.no_grad():
        for t in (1, 4, 16):
            x = torch.randn(1, 3, t, 32, 32)
            feats = model.forward_features(x)
            assert feats.shape == (1, 512, -(-t // 8), 2, 2)
            assert model.forward_head(feats, pre_logits=True).shape == (1, 512)
            assert model(x).shape == (1, 5)


@pytest.mark.parametrize("shape", [(2, 16, 3, 32, 32), (2, 3, 32, 32), (2, 1, 16, 32, 32)])
def test_wrong_input_shape_raises(shape):
    model = zoo.build("r2plus1d_18", num_classes=5)
    with pytest.raises(ValueError, match=r"expects input \[B, 3, T, H, W\]"):
        model(torch.randn(*shape))


def test_reset_classifier():
    model = zoo.build("r2plus1d_18", num_classes=5)
    model.reset_classifier(3)
    assert model.get_classifier().out_features == 3 and model.num_classes == 3
    assert _logits(model, torch.randn(1, 3, 4, 16, 16)).shape == (1, 3)
