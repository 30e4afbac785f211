"""The shared 2D trunk (`zoo.models._trunk2d`): timm's ResNet run block by block, with named hook
points where a temporal module plugs in. With nothing plugged it is timm's network, key for key
and bit for bit; each point is met where the docstring says, and a plugged module's parameters
live under its point's name."""
import pytest
import torch
import torch.nn as nn

import zoo
from zoo.models._trunk2d import BLOCK_POINTS, Trunk2D


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
        return x


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_every_point_is_met_in_order_and_changes_nothing_as_identity(arch):
    trunk, ref = _pair(arch)
    log = []
    for point in BLOCK_POINTS:
        if point == "conv2":
            continue
        trunk.plug(point, lambda s, j, block, point=point: _Recorder(log, point) if (s, j) == (1, 0) else None)
    trunk.plug_between(2, _Recorder(log, "after_layer2"))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(trunk(x), ref.forward_features(x))
    assert [p for p, _ in log] == ["pre_block", "pre_residual", "post_conv1", "post_bn3", "after_layer2"]
    def width(block):
        return (block.conv3 if block.bottleneck else block.conv2).out_channels

    block, shapes = trunk.layer2[0], dict(log)
    assert shapes["pre_block"] == shapes["pre_residual"] == (2, width(trunk.layer1[-1]), 16, 16)  # layer1's output
    assert shapes["post_conv1"][1] == block.conv1.out_channels
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
