"""TAda2D: the adaptive conv against its definition, the pooled branch, the zero-initialised start,
the official checkpoint layout, the releases' protocols."""
import re

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.benchmark.latency import randomize_bn_stats
from zoo.models.tada2d import PooledBN, RouteFunc, TAdaConv2d


def _calibrated(model, std=0.05, seed=0):
    """Draw the zero-initialised parts (the calibration's last conv, the pooled branch's BN) at random;
    each block's last BN scaled down so that a random ResNet-50's activations stay finite (the
    calibration grows with its input's scale)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, _, block in model.backbone.blocks():
            (block.bn3 if block.bottleneck else block.bn2).weight.mul_(0.2)
        for m in model.modules():
            if isinstance(m, RouteFunc):
                m.b.weight.copy_(torch.randn(m.b.weight.shape, generator=g) * std)
            if isinstance(m, PooledBN):
                m.pool_bn.weight.copy_(torch.rand(m.pool_bn.weight.shape, generator=g) * 0.2 + 0.1)
    return model


def test_adaptive_conv_is_the_per_frame_calibrated_kernel():
    """conv2d(x * alpha, W) equals the paper's definition: frame t convolved with W_t = alpha_t * W
    (per input channel), as the official code computes it with a grouped conv of one kernel per frame."""
    torch.manual_seed(0)
    n, t, c, o = 2, 4, 8, 6
    conv = torch.nn.Conv2d(c, o, 3, stride=2, padding=1, bias=False)
    ada = TAdaConv2d(conv, num_frames=t).eval()
    torch.nn.init.normal_(ada.rf.b.weight, std=0.3)
    x = torch.randn(n * t, c, 9, 9)
    alpha = ada.rf(x)  # [N*T, C, 1, 1]
    kernels = alpha.view(n * t, 1, c, 1, 1) * conv.weight.unsqueeze(0)  # [N*T, O, C, 3, 3]
    want = F.conv2d(x.reshape(1, n * t * c, 9, 9), kernels.reshape(n * t * o, c, 3, 3), stride=2, padding=1,
                    groups=n * t).view(n * t, o, 5, 5)
    torch.testing.assert_close(ada(x), want, rtol=1e-5, atol=1e-5)
    assert ada.weight is conv.weight  # the base kernel is the 2D conv's (ImageNet loads into it)


def test_calibration_reads_each_frame_and_the_whole_clip():
    rf = RouteFunc(8, num_frames=4).eval()
    assert torch.equal(rf(torch.randn(8, 8, 5, 5)), torch.ones(8, 8, 1, 1))  # zero-initialised: alpha = 1
    torch.nn.init.normal_(rf.b.weight)
    x = torch.randn(8, 8, 5, 5)
    base = rf(x)
    y = x.clone()
    y[3] += 1.0  # the last frame of the first clip
    moved = rf(y)
    assert not torch.allclose(moved[:4], base[:4])  # its clip changes (neighbours and the global pool)
    assert torch.equal(moved[4:], base[4:])  # the other clip does not


def test_pooled_branch_is_a_zero_padded_temporal_average():
    bn = PooledBN(torch.nn.BatchNorm2d(6), num_frames=5)
    y = torch.randn(2 * 5, 6, 3, 3)
    want = F.avg_pool3d(y.view(2, 5, 6, 3, 3).transpose(1, 2), (3, 1, 1), 1, (1, 0, 0), count_include_pad=True)
    torch.testing.assert_close(bn.temporal_average(y), want.transpose(1, 2).reshape(10, 6, 3, 3))
    with pytest.raises(zoo.ZooError, match="odd kernel"):
        PooledBN(torch.nn.BatchNorm2d(6), num_frames=5, kernel=2)


def test_starts_as_its_2d_network_and_learns_order():
    """Zero-initialised, TAda2D is a 2D network averaged over frames (order invariant); with the
    calibration and the pooled branch drawn, frame order matters."""
    model = randomize_bn_stats(zoo.build("tada2d_r50", num_classes=6, backbone="resnet18"), affine=True).eval()
    torch.nn.init.normal_(model.fc.weight, std=1.0)
    for m in model.modules():
        if isinstance(m, PooledBN):  # randomize_bn_stats drew them: back to the zero start
            torch.nn.init.zeros_(m.pool_bn.weight)
            torch.nn.init.zeros_(m.pool_bn.bias)
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        out, rev = model(x), model(x.flip(2))
        torch.testing.assert_close(out, rev, rtol=1e-5, atol=1e-5)
        _calibrated(model)
        out, rev = model(x), model(x.flip(2))
    assert (out - rev).abs().max() > 1e-3 * out.abs().max()  # far above rounding (1e-5 above)


def test_stem_has_no_max_pool_and_layer1_strides():
    model = zoo.build("tada2d_r50", num_classes=4)
    trunk = model.backbone
    assert isinstance(trunk.maxpool, torch.nn.Identity)
    assert trunk.layer1[0].conv2.stride == (2, 2) and trunk.layer1[0].downsample[0].stride == (2, 2)
    assert sum(isinstance(m, TAdaConv2d) for m in model.modules()) == 16
    assert sum(isinstance(m, PooledBN) for m in model.modules()) == 16
    with torch.no_grad():
        assert trunk(torch.randn(8, 3, 64, 64)).shape == (8, 2048, 2, 2)  # stride 32, as ResNet-50


# the official release's layout (alibaba-mmai-research/TAdaConv ResNet3D + TAda2DBlock + BaseHead):
# 560 tensors; a few of them, with their shapes
OFFICIAL_KEYS = {
    "backbone.conv1.a.weight": (64, 3, 1, 7, 7),
    "backbone.conv1.a_bn.running_var": (64,),
    "backbone.conv2.res_1.short_cut.weight": (256, 64, 1, 1, 1),
    "backbone.conv2.res_1.conv_branch.b.weight": (1, 1, 64, 64, 3, 3),
    "backbone.conv2.res_1.conv_branch.b_rf.g.weight": (64, 64, 1, 1, 1),
    "backbone.conv2.res_1.conv_branch.b_rf.a.weight": (16, 64, 3, 1, 1),
    "backbone.conv2.res_1.conv_branch.b_rf.b.weight": (64, 16, 3, 1, 1),
    "backbone.conv2.res_1.conv_branch.b_avgpool_bn.weight": (64,),
    "backbone.conv5.res_3.conv_branch.c_bn.num_batches_tracked": (),
    "head.out.weight": (400, 2048),
}
_INNER = (("downsample.0.", "short_cut."), ("downsample.1.", "short_cut_bn."), ("conv2.rf.", "conv_branch.b_rf."),
          ("bn2.pool_bn.", "conv_branch.b_avgpool_bn."), ("conv1.", "conv_branch.a."), ("bn1.", "conv_branch.a_bn."),
          ("conv2.", "conv_branch.b."), ("bn2.", "conv_branch.b_bn."), ("conv3.", "conv_branch.c."),
          ("bn3.", "conv_branch.c_bn."))


def _official_key(k: str) -> str:
    if k.startswith("fc."):
        return "head.out." + k[3:]
    m = re.match(r"backbone\.layer(\d)\.(\d+)\.(.*)", k)
    if not m:  # the stem
        return k.replace("backbone.conv1.", "backbone.conv1.a.").replace("backbone.bn1.", "backbone.conv1.a_bn.")
    for ours, theirs in _INNER:
        if m[3].startswith(ours):
            return f"backbone.conv{int(m[1]) + 1}.res_{int(m[2]) + 1}.{theirs}{m[3][len(ours):]}"
    raise AssertionError(k)


def _official_layout(state_dict):
    """zoo's keys -> the release's, with its 3D shapes (written from the official code's layout)."""
    out = {}
    for k, v in state_dict.items():
        k = _official_key(k)
        if k.endswith("conv_branch.b.weight"):
            v = v[None, None]  # [O, I, kh, kw] -> [1, 1, O, I, kh, kw]
        elif v.dim() == 4:
            v = v.unsqueeze(2)  # [O, I, kh, kw] -> [O, I, 1, kh, kw]
        elif v.dim() == 3:
            v = v[..., None, None]  # temporal conv1d [O, I, k] -> [O, I, k, 1, 1]
        out[k] = v.clone()
    return out


def test_official_checkpoint_fetched_by_hand_loads_exactly(fetched_by_hand):
    """The release's layout, imported as `zoo weights fetch tada2d_r50.kinetics400 --from FILE` does
    (any file name), then built by tag: the same logits, the release's class names."""
    model = _calibrated(randomize_bn_stats(zoo.build("tada2d_r50"))).eval()
    official = _official_layout(model.state_dict())
    assert len(official) == 560
    for k, shape in OFFICIAL_KEYS.items():
        assert tuple(official[k].shape) == shape, k
    loaded = fetched_by_hand("tada2d_r50.kinetics400", {"model_state": official, "epoch": 100}, "downloaded.pyth")
    assert loaded.weights_tag == "tada2d_r50.kinetics400" and len(loaded.categories) == 400
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_imagenet_resnet_initialises_the_base_kernels():
    import torchvision

    from zoo.models.tada2d import checkpoint_filter_fn

    resnet = torchvision.models.resnet50()
    model = zoo.build("tada2d_r50", num_classes=1000)
    model.load_state_dict(checkpoint_filter_fn(resnet.state_dict(), model))
    assert torch.equal(model.backbone.layer2[0].conv2.weight, resnet.layer2[0].conv2.weight)
    assert not model.backbone.layer2[0].conv2.rf.b.weight.any()  # the calibration keeps its zero start
    assert not model.backbone.layer2[0].bn2.pool_bn.weight.any()


@pytest.mark.parametrize("tag, sampling, frames, segments, rate, views, classes", [
    ("kinetics400", "dense", 8, 1, 8, (10, 3), 400),
    ("kinetics400_16x5", "dense", 16, 1, 5, (10, 3), 400),
    ("sthv2", "segment", 8, 8, 1, (2, 3), 174),
    ("sthv2_16f", "segment", 16, 16, 1, (2, 3), 174),
])
def test_release_protocols(tag, sampling, frames, segments, rate, views, classes):
    spec = zoo.resolve("tada2d_r50", pretrained=tag)
    info = spec.info
    assert (info.sampling, info.num_frames, info.num_segments, info.sampling_rate) == (sampling, frames, segments, rate)
    assert info.test_views == views and (info.crop_size, info.resize_size) == (256, 256)
    assert spec.model_args.get("num_frames", 8) == frames and len(spec.categories) == classes
    assert spec.record.page.startswith("https://drive.google.com/") and not spec.record.urls
    assert spec.record.file_names == (f"tada2d_r50_{tag}.pyth",)


def test_clip_length_follows_frames_under_segment_sampling():
    spec = zoo.resolve("tada2d_r50", pretrained="sthv2", frames=16)
    assert (spec.info.num_frames, spec.info.num_segments, spec.model_args["num_frames"]) == (16, 16, 16)
    spec = zoo.resolve("tada2d_r50", pretrained="sthv2", num_frames=12)
    assert (spec.info.num_frames, spec.info.num_segments) == (12, 12)
