"""BQN: the band-pass filters' start and what they compute, the two pathways' inputs, lateral links that
start silent, the official layout (TSN keys with ``path_c`` / ``path_f`` blocks), ImageNet into both
pathways, small maps padded by repeated reflection."""
import math

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.benchmark.latency import randomize_bn_stats
from zoo.models.bqn import LaplacianOfGaussian, MotionBandPass

SMALL = dict(backbone="resnet18", num_segments=4, num_classes=5)


def test_laplacian_of_gaussian_starts_as_the_normalised_kernel():
    log = LaplacianOfGaussian(2, sigma=1.1, kernel_size=5)
    k = log.weight.detach()[0, 0]
    i, j = 1, 4  # offsets -1, +2 from the centre
    d2 = (i - 2) ** 2 + (j - 2) ** 2
    raw = lambda r2: (-1 / (math.pi * 1.1 ** 4)) * (1 - r2 / (2 * 1.1 ** 2)) * math.exp(-r2 / (2 * 1.1 ** 2))  # noqa: E731
    total = sum(raw((a - 2) ** 2 + (b - 2) ** 2) for a in range(5) for b in range(5))
    assert float(k[i, j]) == pytest.approx(raw(d2) / total, rel=1e-5)
    assert float(k.sum()) == pytest.approx(1.0, abs=1e-4) and torch.equal(log.weight[0], log.weight[1])
    x = torch.randn(3, 2, 6, 6)
    assert log(x).shape == x.shape  # reflect padded
    torch.testing.assert_close(log(x), F.conv2d(F.pad(x, (2,) * 4, mode="reflect"), log.weight, groups=2))


def test_small_maps_are_padded_by_repeated_reflection():
    from zoo.models.bqn import reflect_pad

    x = torch.arange(3.0).view(1, 1, 1, 3).expand(1, 1, 3, 3)
    row = reflect_pad(x, 4)[0, 0, 4].tolist()  # numpy's reflect of [0, 1, 2] by 4: 0 1 2 1 | 0 1 2 | 1 0 1 2
    assert row == [0.0, 1.0, 2.0, 1.0, 0.0, 1.0, 2.0, 1.0, 0.0, 1.0, 2.0]
    assert torch.equal(reflect_pad(torch.ones(1, 1, 1, 1) * 5, 3), torch.full((1, 1, 7, 7), 5.0))
    torch.testing.assert_close(reflect_pad(x, 1), F.pad(x, (1,) * 4, mode="reflect"))


def test_input_band_pass_combines_each_segments_three_frames():
    mbpf = MotionBandPass(3, num_segments=2, sigma=1.1, kernel_size=3, per_segment=True)
    frames = torch.randn(6, 3, 5, 5)  # 1 clip, 2 segments x 3 frames
    spatial = mbpf.conv_s(frames)
    want = torch.stack([(-spatial[3 * t] + 2 * spatial[3 * t + 1] - spatial[3 * t + 2]) / 3 for t in range(2)])
    torch.testing.assert_close(mbpf(frames), want, rtol=1e-5, atol=1e-5)


def test_lateral_band_pass_runs_over_neighbouring_segments_edges_repeated():
    mbpf = MotionBandPass(4, num_segments=3, sigma=0.9, kernel_size=1)  # a 1x1 kernel: only the temporal filter
    x = torch.randn(3, 4, 2, 2)
    s = x * mbpf.conv_s.weight.view(1, 4, 1, 1)
    padded = torch.cat([s[:1], s, s[-1:]])
    want = torch.stack([(-padded[t] + 2 * padded[t + 1] - padded[t + 2]) / 3 for t in range(3)])
    torch.testing.assert_close(mbpf(x), want, rtol=1e-5, atol=1e-6)


def test_pathways_see_their_inputs_and_links_start_silent():
    """At initialisation (link BNs at zero) the quiet pathway reads only each segment's first frame and
    the busy pathway only the band-passed frames; with the links open, each reaches the other."""
    model = randomize_bn_stats(zoo.build("bqn_r50", **SMALL)).eval()
    x = torch.randn(1, 3, 12, 64, 64)
    later = x.clone()
    later[:, :, 1::3] += 1  # the second frame of every segment
    with torch.no_grad():
        a, b = model.forward_features(x), model.forward_features(later)
        assert torch.equal(a[:, :, 0], b[:, :, 0]) and not torch.allclose(a[:, :, 1], b[:, :, 1])
        for stage in model.laterals:
            for link in stage:
                link.d_down[1].weight.fill_(0.5)
        c, d = model.forward_features(x), model.forward_features(later)
        assert not torch.allclose(c[:, :, 0], d[:, :, 0])  # busy -> quiet
        logits = model(x)
        torch.testing.assert_close(logits, model.fc(c).mean(2).mean(1))


def _official_layout(state_dict):
    """zoo keys -> the official TSN(BQN) checkpoint keys."""
    out = {}
    for k, v in state_dict.items():
        if k.startswith("quiet.layer") or k.startswith("busy.layer"):
            path, _, rest = k.partition(".")
            layer, block, tail = rest.split(".", 2)
            k = f"{layer}.{block}.{'path_c' if path == 'quiet' else 'path_f'}.{tail}"
        elif k.startswith("quiet."):
            k = k[len("quiet."):]
        elif k.startswith("busy."):
            k = "d_" + k[len("busy."):]
        elif k.startswith("laterals."):
            _, stage, block, tail = k.split(".", 3)
            k = f"layer{int(stage) + 1}.{block}.{tail}"
        out["module.base_model." + k] = v.clone()
    return out


# the official model's keys (resnet50(num_segments=16, data_length=3)): 864 tensors
OFFICIAL_KEYS = {
    "module.base_model.mbpf1.conv_s.weight": (3, 1, 9, 9),
    "module.base_model.mbpf1.conv_t.weight": (3, 1, 3),
    "module.base_model.d_conv1.weight": (64, 3, 7, 7),
    "module.base_model.layer1.0.path_f.downsample.0.weight": (256, 64, 1, 1),
    "module.base_model.layer1.0.path_c.downsample.1.running_var": (256,),
    "module.base_model.layer3.5.mbpf.conv_s.weight": (1024, 1, 7, 7),
    "module.base_model.layer4.2.mbpf.conv_s.weight": (2048, 1, 3, 3),
    "module.base_model.layer4.2.d_up.1.weight": (2048,),
    "module.base_model.layer2.0.d_down.0.weight": (512, 512, 1, 1),
    "module.base_model.fc.weight": (400, 2048),
}


def test_official_layout_loads_exactly(tmp_path):
    model = zoo.build("bqn_r50")
    official = _official_layout(model.state_dict())
    assert len(official) == 864
    for k, shape in OFFICIAL_KEYS.items():
        assert tuple(official[k].shape) == shape, k
    small = randomize_bn_stats(zoo.build("bqn_r50", **SMALL), affine=True).eval()
    path = tmp_path / "ckpt.best.pth.tar"
    torch.save({"state_dict": _official_layout(small.state_dict()), "epoch": 1}, path)
    loaded = zoo.build("bqn_r50", weights=str(path), **SMALL).eval()
    assert loaded.load_report.loaded
    x = torch.randn(1, 3, 12, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), small(x))


def test_imagenet_resnet_initialises_both_pathways():
    import torchvision

    from zoo.models.bqn import checkpoint_filter_fn

    resnet = torchvision.models.resnet50()
    model = zoo.build("bqn_r50", num_classes=1000)
    start = model.laterals[1][0].mbpf.conv_s.weight.clone()
    model.load_state_dict(checkpoint_filter_fn(resnet.state_dict(), model))
    for trunk in (model.quiet, model.busy):
        assert torch.equal(trunk.layer3[2].conv2.weight, resnet.layer3[2].conv2.weight)
        assert torch.equal(trunk.conv1.weight, resnet.conv1.weight)
    assert torch.equal(model.fc.weight, resnet.fc.weight)
    assert torch.equal(model.laterals[1][0].mbpf.conv_s.weight, start)
    assert not model.laterals[1][0].d_up[1].weight.any()


def test_clip_is_segments_of_three_frames():
    info = zoo.model_info("bqn_r50")
    assert (info.num_segments, info.frames_per_segment, info.num_frames) == (16, 3, 48)
    spec = zoo.resolve("bqn_r50", frames=24)
    assert spec.model_args["num_segments"] == 8 and spec.info.num_frames == 24
    model = zoo.build("bqn_r50", **SMALL)
    with pytest.raises(zoo.ZooError, match=r"\[B, 3, 12, H, W\]"):
        model(torch.randn(1, 3, 4, 64, 64))
    with pytest.raises(zoo.ZooError, match="4 kernel sizes"):
        zoo.build("bqn_r50", lateral_kernels=[7, 7, 3])
    assert "No weights were released" in info.notes
