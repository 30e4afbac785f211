"""I3D (inflated Inception-v1) and the 2D -> 3D inflation utility."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

import zoo
from zoo.benchmark.latency import randomize_bn_stats
from zoo.models._inflate import inflate_2d, inflate_weight
from zoo.models.i3d import (ENDPOINTS, I3D, MaxPool3dSame, Unit3D, checkpoint_filter_fn,
                            googlenet_to_i3d_key, inflate_googlenet, same_padding)

torch.set_num_threads(1)

CONVS = ["Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3"] + [
    f"Mixed_{s}.{b}" for s in ("3b", "3c", "4b", "4c", "4d", "4e", "4f", "5b", "5c")
    for b in ("b0", "b1a", "b1b", "b2a", "b2b", "b3b")]


def pytorch_i3d_keys():
    """piergiaj/pytorch-i3d's state-dict keys, in its order (logits registered first)."""
    keys = ["logits.conv3d.weight", "logits.conv3d.bias"]
    for c in CONVS:
        keys += [f"{c}.conv3d.weight"] + [f"{c}.bn.{p}" for p in
                                          ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
    return keys


# -- TF SAME padding -----------------------------------------------------------------------
@pytest.mark.parametrize("size,kernel,stride,expected", [
    (224, 7, 2, (2, 3)),  # I3D stem: the extra pixel at the end
    (7, 7, 2, (3, 3)),    # odd size: 7 - 7 % 2 = 6
    (6, 3, 2, (0, 1)),
    (7, 3, 2, (1, 1)),
    (4, 2, 1, (0, 1)),
    (16, 2, 2, (0, 0)),   # MaxPool3d_5a
    (5, 1, 1, (0, 0)),
])
def test_same_padding_values(size, kernel, stride, expected):
    assert same_padding(size, kernel, stride) == expected


def test_same_conv_hand_computed():
    unit = Unit3D(1, 1, (1, 1, 2), (1, 1, 1), use_bn=False, activation=False)
    nn.init.ones_(unit.conv3d.weight)
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 1, 1, 4)
    # SAME: total pad 1, all of it at the end -> [1+2, 2+3, 3+4, 4+0] (not [0+1, ...])
    assert unit(x).flatten().tolist() == [3.0, 5.0, 7.0, 4.0]
    unit = Unit3D(1, 1, (1, 1, 3), (1, 1, 2), use_bn=False, activation=False)
    nn.init.ones_(unit.conv3d.weight)
    # size 4, k 3, s 2: pad (0, 1) -> windows [1, 2, 3], [3, 4, 0]
    assert unit(x).flatten().tolist() == [6.0, 7.0]


def test_same_maxpool_pads_with_minus_inf():
    pool = MaxPool3dSame((1, 1, 3), (1, 1, 2))
    x = -torch.arange(1.0, 7.0).view(1, 1, 1, 1, 6)  # [-1, ..., -6]
    # pad (0, 1): windows [-1,-2,-3], [-3,-4,-5], [-5,-6,pad]; a zero pad would give 0 last
    assert pool(x).flatten().tolist() == [-1.0, -3.0, -5.0]


# -- layout --------------------------------------------------------------------------------
def test_state_dict_is_pytorch_i3d_layout():
    model = I3D()
    assert set(model.state_dict()) == set(pytorch_i3d_keys())
    assert len(model.state_dict()) == 344
    assert sum(p.numel() for p in model.parameters()) == 12_697_264
    assert model.Mixed_3b.b1b.conv3d.weight.shape == (128, 96, 3, 3, 3)
    assert model.Mixed_5c.b2b.conv3d.weight.shape == (128, 48, 3, 3, 3)  # b2 is 3x3x3
    assert all(m.eps == 1e-3 for m in model.modules() if isinstance(m, nn.BatchNorm3d))


def test_endpoint_shapes_at_64x224():
    expected = {  # (C, T, H, W) at 1x3x64x224x224, from the reference layout table
        "Conv3d_1a_7x7": (64, 32, 112, 112), "MaxPool3d_2a_3x3": (64, 32, 56, 56),
        "Conv3d_2c_3x3": (192, 32, 56, 56), "MaxPool3d_3a_3x3": (192, 32, 28, 28),
        "Mixed_3b": (256, 32, 28, 28), "Mixed_3c": (480, 32, 28, 28), "MaxPool3d_4a_3x3": (480, 16, 14, 14),
        "Mixed_4b": (512, 16, 14, 14), "Mixed_4e": (528, 16, 14, 14), "Mixed_4f": (832, 16, 14, 14),
        "MaxPool3d_5a_2x2": (832, 8, 7, 7), "Mixed_5b": (832, 8, 7, 7), "Mixed_5c": (1024, 8, 7, 7)}
    model = I3D().to("meta")  # shapes only: nothing is computed
    out = model.forward_endpoints(torch.empty(1, 3, 64, 224, 224, device="meta"))
    assert list(out) == list(ENDPOINTS)
    for name, shape in expected.items():
        assert tuple(out[name].shape[1:]) == shape, name
    assert model(torch.empty(1, 3, 64, 224, 224, device="meta")).shape == (1, 400)


def test_head_is_deepmind_pool_then_time_average():
    torch.manual_seed(0)
    model = I3D(num_classes=7).eval()
    feats = torch.randn(2, 1024, 8, 7, 7)
    # AvgPool [2,7,7] stride 1 over T'=8 gives 7 windows (t, t+1); averaging them weights the
    # two border frames 1/14 and the six inner ones 2/14.
    w_t = torch.tensor([1, 2, 2, 2, 2, 2, 2, 1.0]) / 14
    emb = (feats.mean((3, 4)) * w_t).sum(2)
    weight, bias = model.logits.conv3d.weight.flatten(1), model.logits.conv3d.bias
    torch.testing.assert_close(model.forward_head(feats, pre_logits=True), emb, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.forward_head(feats), emb @ weight.T + bias, atol=1e-5, rtol=1e-5)
    # a feature map smaller than the pool (inputs under 224 px): the kernel is clamped
    small = torch.randn(2, 1024, 1, 2, 2)
    torch.testing.assert_close(model.forward_head(small), small.mean((2, 3, 4)) @ weight.T + bias,
                               atol=1e-5, rtol=1e-5)


def test_min_size_forward_and_classifier():
    info = zoo.model_info("i3d_inception_v1")
    model = zoo.build("i3d", num_classes=5).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 8, info.min_size, info.min_size))
    assert out.shape == (1, 5) and torch.isfinite(out).all()
    assert model.get_classifier() is model.logits
    model.reset_classifier(3)
    assert model.num_classes == 3 and model.logits.conv3d.out_channels == 3


@pytest.mark.parametrize("bad", [torch.zeros(2, 3, 32, 32), torch.zeros(1, 1, 8, 32, 32),
                                 torch.zeros(1, 3, 8, 32, 32, dtype=torch.long)])
def test_wrong_input_raises(bad):
    model = I3D(num_classes=5)
    with pytest.raises(ValueError, match=r"expects input \[B, 3, T, H, W\]"):
        model(bad)


def test_registered_info():
    info = zoo.model_info("i3d")
    assert info.name == "i3d_inception_v1" and info.family == "i3d"
    assert "i3d_inception_v1" in zoo.list_models() and "i3d" not in zoo.list_models()  # "i3d" is an alias
    assert "i3d" in zoo.list_models(include_aliases=True)
    assert info.value_range == (-1.0, 1.0)
    assert (info.sampling, info.num_frames, info.crop_size) == ("dense", 64, 224)
    assert isinstance(zoo.build("i3d", num_classes=5), I3D)


# -- official checkpoints ------------------------------------------------------------------
def _pytorch_i3d_state_dict(model):
    own = model.state_dict()
    return {k: own[k].clone() for k in pytorch_i3d_keys()}


@pytest.mark.parametrize("wrap", ["plain", "dataparallel", "old_torch"])
def test_pytorch_i3d_checkpoint_roundtrip(tmp_path, wrap):
    torch.manual_seed(0)
    src = randomize_bn_stats(zoo.build("i3d"), affine=True).eval()
    sd = _pytorch_i3d_state_dict(src)
    if wrap == "dataparallel":
        sd = {"state_dict": {f"module.{k}": v for k, v in sd.items()}}
    elif wrap == "old_torch":  # torch < 0.4.1 saved no BN step counters
        sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "rgb_imagenet.pt"
    torch.save(sd, path)
    dst = zoo.build("i3d", weights=str(path)).eval()
    assert len(dst.load_report.loaded) == 344 - (len(CONVS) if wrap == "old_torch" else 0)
    x = torch.randn(1, 3, 16, 32, 32)
    with torch.no_grad():
        assert torch.equal(dst(x), src(x))


def test_pytorch_i3d_checkpoint_new_classes(tmp_path):
    src = zoo.build("i3d")
    path = tmp_path / "rgb_imagenet.pt"
    torch.save(_pytorch_i3d_state_dict(src), path)
    dst = zoo.build("i3d", num_classes=157, weights=str(path))
    assert sorted(dst.load_report.reinitialised) == ["logits.conv3d.bias", "logits.conv3d.weight"]
    assert torch.equal(dst.Mixed_5c.b0.conv3d.weight, src.Mixed_5c.b0.conv3d.weight)


def test_filter_rejects_non_state_dict_and_flow():
    model = I3D(num_classes=5)
    with pytest.raises(ValueError, match="state dict"):
        checkpoint_filter_fn([1, 2], model)
    flow = _pytorch_i3d_state_dict(model)
    flow["Conv3d_1a_7x7.conv3d.weight"] = torch.zeros(64, 2, 7, 7, 7)
    with pytest.raises(ValueError, match="2-channel input .*RGB"):
        checkpoint_filter_fn(flow, model)


def test_forward_endpoints_rejects_unknown_names():
    with pytest.raises(ValueError, match="Mixed_6a.*choose"):
        I3D(num_classes=5).forward_endpoints(torch.zeros(1, 3, 8, 32, 32), ["Mixed_6a"])


# -- inflation -----------------------------------------------------------------------------
def test_inflate_weight_modes():
    w = torch.randn(4, 3, 5, 5)
    mean = inflate_weight(w, 3)
    assert mean.shape == (4, 3, 3, 5, 5)
    torch.testing.assert_close(mean.sum(2), w)
    assert all(torch.allclose(mean[:, :, t], w / 3) for t in range(3))
    center = inflate_weight(w, 3, "center")
    assert torch.equal(center[:, :, 1], w) and not center[:, :, [0, 2]].any()
    with pytest.raises(ValueError, match="mode"):
        inflate_weight(w, 3, "bogus")


def test_inflate_2d_conv_bn_equivalence():
    torch.manual_seed(0)
    net2d = randomize_bn_stats(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)), affine=True).eval()
    net3d = nn.Sequential(nn.Conv3d(3, 8, 3, padding=1, bias=False), nn.BatchNorm3d(8)).eval()
    sd = inflate_2d(net2d, net3d)
    assert set(sd) == set(net3d.state_dict())
    assert sd["1.running_var"].data_ptr() != net2d[1].running_var.data_ptr()  # copied, not shared
    net3d.load_state_dict(sd)
    frame = torch.randn(1, 3, 10, 10)
    with torch.no_grad():
        ref = net2d(frame)
        static = net3d(frame.unsqueeze(2).repeat(1, 1, 5, 1, 1))
        for t in (1, 2, 3):  # interior: the temporal window sees the frame three times
            torch.testing.assert_close(static[:, :, t], ref, atol=1e-5, rtol=1e-5)
        assert (static[:, :, 0] - ref).abs().max() > 1e-3  # the border sees a zero pad
        # "center" inflation reproduces the 2D network frame by frame on any video
        net3d.load_state_dict(inflate_2d(net2d, net3d, mode="center"))
        video = torch.randn(1, 3, 4, 10, 10)
        out = net3d(video)
        for t in range(4):
            torch.testing.assert_close(out[:, :, t], net2d(video[:, :, t]), atol=1e-5, rtol=1e-5)


def test_inflate_2d_errors_and_rename():
    net2d = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Linear(2, 2))
    net3d = nn.Sequential(nn.Conv3d(3, 8, 3), nn.Conv3d(8, 8, 1))
    with pytest.raises(ValueError, match=r"1\.weight \[2, 2\] -> 1\.weight \[8, 8, 1, 1, 1\]: shapes do not match"):
        inflate_2d(net2d, net3d)
    with pytest.raises(ValueError, match="no such key"):
        inflate_2d(net2d, net3d, lambda k: "head." + k)
    sd = inflate_2d(net2d, net3d, strict=False)
    assert set(sd) == {"0.weight", "0.bias"}
    sd = inflate_2d(net2d.state_dict(), net3d.state_dict(), lambda k: None if k.startswith("1.") else k)
    assert sd["0.weight"].shape == (8, 3, 3, 3, 3)


def test_googlenet_key_mapping():
    assert googlenet_to_i3d_key("conv1.conv.weight") == "Conv3d_1a_7x7.conv3d.weight"
    assert googlenet_to_i3d_key("conv3.bn.running_mean") == "Conv3d_2c_3x3.bn.running_mean"
    assert googlenet_to_i3d_key("inception3a.branch2.1.conv.weight") == "Mixed_3b.b1b.conv3d.weight"
    assert googlenet_to_i3d_key("inception4e.branch3.0.bn.bias") == "Mixed_4f.b2a.bn.bias"
    assert googlenet_to_i3d_key("inception5b.branch4.1.bn.running_var") == "Mixed_5c.b3b.bn.running_var"
    for dropped in ("fc.weight", "aux1.conv.conv.weight", "aux2.fc2.bias"):
        assert googlenet_to_i3d_key(dropped) is None
    for bad in ("inception3a.branch4.0.conv.weight", "conv1.branch1.conv.weight", "inception6a.branch1.conv.weight"):
        with pytest.raises(ValueError, match="GoogLeNet"):
            googlenet_to_i3d_key(bad)


def _googlenet(seed=0, size=64):
    """A random GoogLeNet whose BN statistics are those of random [-1, 1] images, so that
    activations stay of order 1 at every depth (the init alone makes them vanish)."""
    torch.manual_seed(seed)
    g = randomize_bn_stats(torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True), seed, affine=True)
    for m in g.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one batch sets the statistics
    with torch.no_grad():
        g.train()(torch.rand(4, 3, size, size) * 2 - 1)
    return g.eval()


def _googlenet_endpoints(g, x, stem_pad):
    """torchvision GoogLeNet's activations under I3D's endpoint names; ``stem_pad`` replaces
    conv1's symmetric padding 3 (TF SAME at 224 and 32..64 px: (2, 3))."""
    lo, hi = stem_pad
    x = F.conv2d(F.pad(x, (lo, hi, lo, hi)), g.conv1.conv.weight, stride=2)
    x = F.relu(g.conv1.bn(x))
    out = {"Conv3d_1a_7x7": x}
    layers = [("MaxPool3d_2a_3x3", g.maxpool1), ("Conv3d_2b_1x1", g.conv2), ("Conv3d_2c_3x3", g.conv3),
              ("MaxPool3d_3a_3x3", g.maxpool2), ("Mixed_3b", g.inception3a), ("Mixed_3c", g.inception3b),
              ("MaxPool3d_4a_3x3", g.maxpool3), ("Mixed_4b", g.inception4a), ("Mixed_4c", g.inception4b),
              ("Mixed_4d", g.inception4c), ("Mixed_4e", g.inception4d), ("Mixed_4f", g.inception4e),
              ("MaxPool3d_5a_2x2", g.maxpool4), ("Mixed_5b", g.inception5a), ("Mixed_5c", g.inception5b)]
    for name, layer in layers:
        x = out[name] = layer(x)
    return out


def _assert_boring_video(model, g, frames, size, endpoints, rtol):
    """At the middle time step every endpoint equals GoogLeNet's (with TF-SAME stem padding)
    to ``rtol`` of its largest activation; at the first time step the temporal zero padding
    makes them differ."""
    dtype = next(model.parameters()).dtype
    frame = torch.rand(1, 3, size, size, dtype=dtype) * 2 - 1  # both take [-1, 1]
    with torch.no_grad():
        ref = _googlenet_endpoints(g, frame, same_padding(size, 7, 2))
        out = model.eval().forward_endpoints(frame.unsqueeze(2).repeat(1, 1, frames, 1, 1), endpoints)
    for name in endpoints:
        mid = out[name].shape[2] // 2
        scale = ref[name].abs().max()
        err = (out[name][:, :, mid] - ref[name]).abs().max()
        assert scale > 0.1 and err <= rtol * scale, f"{name}: max |diff| {err:.3g} (scale {scale:.3g})"
        assert (out[name][:, :, 0] - ref[name]).abs().max() > 1e-3 * scale, f"{name}: border unaffected?"
    return frame, ref


def test_inflated_googlenet_reproduces_2d_on_boring_video():
    g = _googlenet()
    model = zoo.build("i3d", num_classes=5, inflate_from=g)
    endpoints = ["Conv3d_1a_7x7", "Conv3d_2c_3x3", "Mixed_3b", "Mixed_3c"]
    frame, ref = _assert_boring_video(model, g, 24, 64, endpoints, rtol=1e-5)
    # torchvision's own stem (padding 3 on both sides) samples a grid shifted by one pixel
    with torch.no_grad():
        shifted = _googlenet_endpoints(g, frame, (3, 3))["Mixed_3c"]
    assert (shifted - ref["Mixed_3c"]).abs().max() > 1e-2 * ref["Mixed_3c"].abs().max()


def test_inflated_googlenet_full_depth_float64():
    # float64 throughout: in float32 the rounding of w / T alone grows to ~1e-5 (relative) by Mixed_5c
    g = _googlenet(1, size=32).double()
    model = I3D(num_classes=5).double()
    loaded = inflate_googlenet(model, g.state_dict())
    assert len(loaded) == 342 and not any(k.startswith("logits.") for k in loaded)
    # 128 frames leave interior time steps at Mixed_5c (temporal receptive field ~99 frames)
    _assert_boring_video(model, g, 128, 32, ["Mixed_4b", "Mixed_4f", "Mixed_5c"], rtol=1e-9)


def test_inflate_from_errors_and_download_path(monkeypatch):
    with pytest.raises(ValueError, match="inflate_from"):
        I3D(num_classes=5, inflate_from="resnet50")
    with pytest.raises(TypeError, match="inflate_from"):
        I3D(num_classes=5, inflate_from=3)
    partial = {k: v for k, v in _googlenet().state_dict().items() if not k.startswith("inception5b.")}
    with pytest.raises(ValueError, match=r"lacks \d+ tensor\(s\).*Mixed_5c"):
        I3D(num_classes=5, inflate_from=partial)
    # "googlenet" asks torchvision for its ImageNet weights (stubbed here: no network in tests)
    calls, stub = [], _googlenet(2)

    def fake_googlenet(**kwargs):
        calls.append(kwargs)
        return stub

    monkeypatch.setattr(torchvision.models, "googlenet", fake_googlenet)
    model = I3D(num_classes=5, inflate_from="googlenet")
    assert calls == [{"weights": "IMAGENET1K_V1"}]
    expected = inflate_weight(stub.inception4a.branch3[1].conv.weight, 3)
    assert torch.equal(model.Mixed_4b.b2b.conv3d.weight, expected)
