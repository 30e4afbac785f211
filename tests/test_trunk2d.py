"""The shared 2D trunk (`zoo.models._trunk2d`): timm's ResNet run block by block, with named hook
points where a temporal module plugs in. With nothing plugged it is timm's network, key for key
and bit for bit; each point is met where the docstring says, and a plugged module's parameters
live under its point's name."""
import pytest
import torch
import torch.nn as nn

import zoo
from zoo.models._trunk2d import BLOCK_POINTS, ECA, ECA_KERNELS, REPLACED_POINTS, Trunk2D


def _pair(arch):
    import timm

    torch.manual_seed(0)
    trunk = Trunk2D(arch)
    torch.manual_seed(0)
    ref = timm.create_model(arch, pretrained=False, num_classes=0, zero_init_last=False)
    return trunk.eval(), ref.eval()


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_with_nothing_plugged_it_is_timms_resnet(arch):
    trunk, ref = _pair(arch)
    assert list(trunk.state_dict()) == list(ref.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(trunk.state_dict().values(), ref.state_dict().values()))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(trunk(x), ref.forward_features(x))


class _Recorder(nn.Module):
    """Identity that records where it ran: (its point, the input shape)."""

    def __init__(self, log, point, channels=None):
        super().__init__()
        self.log, self.point = log, point
        self.scale = nn.Parameter(torch.ones(channels)) if channels else None

    def forward(self, x):
        self.log.append((self.point, tuple(x.shape)))
        return x.new_zeros(()) if self.point == "beside_conv2" else x  # a branch adds: zero changes nothing


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_every_point_is_met_in_order_and_changes_nothing_as_identity(arch):
    trunk, ref = _pair(arch)
    log = []
    for point in BLOCK_POINTS:
        if point in REPLACED_POINTS:
            continue
        trunk.plug(point, lambda s, j, block, point=point: _Recorder(log, point) if (s, j) == (1, 0) else None)
    trunk.plug_between(2, _Recorder(log, "after_layer2"))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(trunk(x), ref.forward_features(x))
    assert [p for p, _ in log] == ["pre_block", "pre_residual", "post_conv1", "beside_conv2", "post_bn3",
                                   "after_layer2"]
    def width(block):
        return (block.conv3 if block.bottleneck else block.conv2).out_channels

    block, shapes = trunk.layer2[0], dict(log)
    assert shapes["pre_block"] == shapes["pre_residual"] == (2, width(trunk.layer1[-1]), 16, 16)  # layer1's output
    assert shapes["post_conv1"][1] == block.conv1.out_channels and shapes["beside_conv2"] == shapes["post_conv1"]
    assert shapes["post_bn3"] == shapes["after_layer2"] == (2, width(block), 8, 8)


def test_conv2_is_replaced_and_a_module_s_parameters_live_under_its_point():
    trunk, ref = _pair("resnet50")

    class Wrapped(nn.Module):  # a stand-in for TAda2D's adaptive conv: the 3x3 conv, reused
        def __init__(self, conv):
            super().__init__()
            self.conv = conv

        def forward(self, x):
            return self.conv(x)

    trunk.plug("conv2", lambda s, j, block: Wrapped(block.conv2))
    trunk.plug("post_conv1", lambda s, j, block: _Recorder([], "p", block.conv1.out_channels) if s == 0 else None)
    keys = list(trunk.state_dict())
    assert "layer1.0.conv2.conv.weight" in keys and "layer1.0.post_conv1.scale" in keys
    assert "layer2.0.post_conv1.scale" not in keys
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(trunk(x), ref.forward_features(x))
    with pytest.raises(zoo.UsageError, match="hook point must be one of"):
        trunk.plug("after_conv9", lambda s, j, block: None)
    with pytest.raises(zoo.UsageError, match="after stage 1, 2 or 3"):
        trunk.plug_between(4, nn.Identity())


def test_tsm_is_the_trunk_with_shifts_plugged():
    from zoo.models.tsm import TemporalPool, TemporalShift, shifted_blocks

    model = zoo.build("tsm_r50", backbone="resnet18", temporal_pool=True)
    assert isinstance(model.backbone, Trunk2D) and isinstance(model.backbone.after_layer1, TemporalPool)
    assert all(isinstance(b.pre_residual, TemporalShift) for _, _, b in model.backbone.blocks())
    assert [b.pre_residual.num_segments for _, _, b in model.backbone.blocks()] == [8, 8] + [4] * 6
    assert len(shifted_blocks(model)) == 8 and not shifted_blocks(zoo.build("tsn_r50", backbone="resnet18"))


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_without_the_stem_pool_layer1_strides_instead(arch):
    """stem_pool=False (TAda2D's stem): no max pool; the first block's strided conv and its shortcut
    stride 2, so every stage keeps the standard map size."""
    trunk, _ = _pair(arch)
    plain = Trunk2D(arch, stem_pool=False).eval()
    assert isinstance(plain.maxpool, nn.Identity)
    first = plain.layer1[0]
    assert (first.conv2 if first.bottleneck else first.conv1).stride == (2, 2)
    assert first.downsample[0].stride == (2, 2)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert plain(x).shape == trunk(x).shape


def test_eca_is_the_official_channel_attention():
    """ECA: sigmoid of a 1D conv across the channels' global average pools, each channel scaled."""
    eca = ECA(5)
    x = torch.randn(2, 16, 4, 4)
    pooled = x.mean((2, 3))[:, None, :]  # [N, 1, C]
    gate = torch.sigmoid(torch.nn.functional.conv1d(pooled, eca.conv.weight, padding=2))
    torch.testing.assert_close(eca(x), x * gate[:, 0, :, None, None])
    with pytest.raises(zoo.ZooError, match="odd"):
        ECA(4)


def test_eca_attention_sits_after_bn3_with_the_kernel_of_its_stage():
    model = zoo.build("tsn_r50", num_classes=5, attention="eca")
    kernels = [(s, block.post_bn3.conv.kernel_size[0]) for s, _, block in model.backbone.blocks()]
    assert all(k == ECA_KERNELS[s] for s, k in kernels) and len(kernels) == 16
    assert model.state_dict()["backbone.layer1.0.post_bn3.conv.weight"].shape == (1, 1, 3)
    # parameters: ResNet-50 + 80 taps; ECANet's README gives 24.37 M for ECA-Net50 in units of 2**20
    imagenet = zoo.build("tsn_r50", num_classes=1000, attention="eca")
    params = sum(p.numel() for p in imagenet.parameters())
    assert params - sum(p.numel() for p in zoo.build("tsn_r50", num_classes=1000).parameters()) == 80
    assert round(params / 2 ** 20, 2) == 24.37
    with pytest.raises(zoo.ZooError, match="attention must be"):
        zoo.build("tsm_r50", attention="se")


def test_ecanet_imagenet_release_loads_by_its_file_name(tmp_path):
    """ECANet's release layout (DataParallel ``module.`` keys, ``eca`` modules, under ``state_dict``),
    named as the release: recognised, built with attention='eca', every tensor loaded."""
    from zoo.benchmark.latency import randomize_bn_stats

    model = randomize_bn_stats(zoo.build("tsn_r50", num_classes=1000, attention="eca"), affine=True).eval()
    release = {"module." + k.removeprefix("backbone.").replace(".post_bn3.", ".eca."): v
               for k, v in model.state_dict().items()}
    path = tmp_path / "eca_resnet50_k3557.pth.tar"
    torch.save({"epoch": 100, "arch": "eca_resnet50", "state_dict": release}, path)
    for name in ("tsn_r50", "tsm_r50"):
        spec = zoo.resolve(name, weights=str(path))
        assert spec.record.tag == "imagenet_eca" and spec.model_args == {"attention": "eca"}
        loaded = zoo.build(spec).eval()
        assert loaded.load_report.loaded and all(torch.equal(loaded.state_dict()[k], v)
                                                 for k, v in model.state_dict().items())


def test_last_stride_one_keeps_layer3_resolution():
    """last_stride=1 (TCPNet's backbone): layer4 keeps layer3's map; every weight keeps its shape."""
    trunk, _ = _pair("resnet50")
    dense = Trunk2D("resnet50", last_stride=1).eval()
    assert [tuple(v.shape) for v in dense.state_dict().values()] == [tuple(v.shape) for v in trunk.state_dict().values()]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert dense(x).shape == (1, 2048, 4, 4) and trunk(x).shape == (1, 2048, 2, 2)
    with pytest.raises(zoo.ZooError, match="last_stride"):
        Trunk2D("resnet18", last_stride=3)
