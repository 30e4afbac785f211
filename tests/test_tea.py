"""TEA: the motion excitation's reach, the aggregation's two initialisations, the Res2Net trunk against
timm's, the official layout (TSN keys with ``me`` and ``shifts``), ImageNet Res2Net, any segment count;
TCPNet's TEA backbone and its older checkpoint layout."""
import pytest
import timm
import torch

import zoo
from zoo.benchmark.latency import randomize_bn_stats
from zoo.models._trunk2d import Trunk2D
from zoo.models.tea import MotionExcitation, TemporalAggregation
from zoo.models.tsm import temporal_shift


def test_motion_excitation_reads_the_next_frame():
    torch.manual_seed(0)
    me = MotionExcitation(32, num_segments=6).eval()
    x = torch.randn(12, 32, 5, 5)
    changed = x.clone()
    changed[3] += 1  # clip 0, frame 3
    with torch.no_grad():
        a, b = me(x), me(changed)
        moved = [not torch.allclose(a[t], b[t]) for t in range(12)]
        # frame 3's excitation (it is the input) and frame 2's (its next frame changed); clip 1 untouched
        assert moved == [False, False, True, True] + [False] * 8
        me.bn3.weight.zero_()
        me.bn3.bias.zero_()
        assert torch.equal(me(x), x)  # sigmoid(0) - 0.5 = 0: no excitation


def test_aggregation_starts_as_identity_or_as_a_shift():
    x = torch.randn(16, 26, 3, 3)
    assert torch.equal(TemporalAggregation(26, 8)(x), x)
    shifted = TemporalAggregation(26, 8, "shift")(x)
    torch.testing.assert_close(shifted, temporal_shift(x, 8, fold_div=2), rtol=0, atol=0)  # TSM's shift, C/2 each way
    x = torch.randn(16, 32, 3, 3)
    eighth = TemporalAggregation(32, 8, "shift", fold_div=8)(x)  # EAN's: C/8 each way, the rest stay
    torch.testing.assert_close(eighth, temporal_shift(x, 8, fold_div=8), rtol=0, atol=0)
    with pytest.raises(zoo.ZooError, match="does not divide"):
        TemporalAggregation(25, 8)


def test_res2net_trunk_computes_timms_network():
    torch.manual_seed(0)
    trunk = randomize_bn_stats(Trunk2D("res2net50_26w_4s")).eval()
    reference = timm.create_model("res2net50_26w_4s", num_classes=0).eval()
    reference.load_state_dict(trunk.state_dict(), strict=False)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(trunk(x), reference.forward_features(x))
    with pytest.raises(zoo.ZooError, match="hook point"):
        trunk.plug("conv2", lambda s, j, b: None)


# the layout of an official TEA checkpoint (TSN: module.base_model.* with me / shifts, new_fc): 784 tensors
OFFICIAL_KEYS = {
    "module.base_model.layer1.0.me.conv1.weight": (6, 104, 1, 1),
    "module.base_model.layer1.0.me.conv2.weight": (6, 1, 3, 3),
    "module.base_model.layer1.0.shifts.3.conv.weight": (26, 1, 3),
    "module.base_model.layer4.0.convs.2.weight": (208, 208, 3, 3),
    "module.base_model.layer4.2.me.bn3.running_var": (832,),
    "module.new_fc.weight": (400, 2048),
}


def _official(state_dict):
    out = {}
    for k, v in state_dict.items():
        k = k.replace(".post_conv1.", ".me.").replace(".splits.", ".shifts.")
        out["module." + ("new_fc." + k[3:] if k.startswith("fc.") else "base_model." + k[len("backbone."):])] = v.clone()
    return out


def test_official_layout_loads_exactly_at_any_segment_count(tmp_path):
    torch.manual_seed(0)
    model = randomize_bn_stats(zoo.build("tea_r50", num_segments=6)).eval()
    official = _official(model.state_dict())
    assert len(official) == 784
    for k, shape in OFFICIAL_KEYS.items():
        assert tuple(official[k].shape) == shape, k
    path = tmp_path / "tea.pth.tar"
    torch.save({"state_dict": official, "epoch": 50}, path)
    loaded = zoo.build("tea_r50", weights=str(path), num_segments=6).eval()
    x = torch.randn(1, 3, 6, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    with pytest.raises(zoo.ZooError, match="at least 2"):
        zoo.build("tea_r50", num_segments=1)


def test_imagenet_res2net_initialises_the_trunk():
    from zoo.models.tea import checkpoint_filter_fn

    torch.manual_seed(0)
    res2net = timm.create_model("res2net50_26w_4s")
    model = zoo.build("tea_r50", num_classes=1000)
    model.load_state_dict(checkpoint_filter_fn(res2net.state_dict(), model))
    assert torch.equal(model.backbone.layer3[1].convs[2].weight, res2net.layer3[1].convs[2].weight)
    assert torch.equal(model.fc.weight, res2net.fc.weight)
    x = torch.randn(8, 52, 2, 2)  # layer2's splits: 52 channels
    assert torch.equal(model.backbone.layer2[0].splits[0](x), x)  # the aggregation at its start
    record = zoo.weights_info("tea_r50.imagenet")
    assert record.urls[0].endswith("res2net50_26w_4s-06e79181.pth") and record.sha256 is None  # pinned on first use


def test_tcp_tea_backbone_and_the_older_checkpoint_layout(fetched_by_hand):
    """TCPNet's TEA releases: layer4 at stride 16 with its last split unpooled; the older layout (head at
    base_model.iSQRT, each reduction a Sequential, att_module names) loads by tag."""
    torch.manual_seed(0)
    model = randomize_bn_stats(zoo.build("tcp_tea_r50")).eval()
    with torch.no_grad():
        model.head.TCP_att.TSA.norm.weight.uniform_(0.5, 1.5)
        model.head.TCP_att.conv_1d.weight.normal_(0, 0.01)
    assert model.backbone.layer4[0].pool is None and model.backbone.layer3[0].pool is not None
    old = {}
    renames = (("TCP_att.TCA.g1.", "att_module.conv_1."), ("TCP_att.TCA.g2.", "att_module.conv_2."),
               ("TCP_att.TSA.conv_phi_1.", "att_module.sp_att.conv_theta."),
               ("TCP_att.TSA.conv_phi_2.", "att_module.sp_att.conv_phi."),
               ("TCP_att.TSA.conv_phi0.", "att_module.sp_att.conv_g."), ("TCP_att.TSA.", "att_module.sp_att."),
               ("TCP_att.", "att_module."), ("layer_reduce_bn1.", "layer_reduce1.1."),
               ("layer_reduce_bn2.", "layer_reduce2.1."), ("layer_reduce1.", "layer_reduce1.0."),
               ("layer_reduce2.", "layer_reduce2.0."))
    for k, v in model.state_dict().items():
        if k.startswith("head."):
            k = k[5:]
            k = "base_model.iSQRT." + next((k.replace(a, b, 1) for a, b in renames if k.startswith(a)), k)
        elif k.startswith("fc."):
            k = "new_fc." + k[3:]
        else:
            k = "base_model." + k[len("backbone."):].replace(".post_conv1.", ".me.").replace(".splits.", ".shifts.")
        old["module." + k] = v.clone()
    assert "module.base_model.iSQRT.layer_reduce1.1.running_var" in old
    loaded = fetched_by_hand("tcp_tea_r50.kinetics400", {"state_dict": old}, "model_best.pth.tar")
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
