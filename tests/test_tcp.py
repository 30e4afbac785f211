"""TCPNet: the covariance pooling and its square root against their definitions, the temporal attention's
reach and start, the last stride, the official checkpoint layouts (current and the older iSQRT one),
the ImageNet GCP initialisation and the releases' protocols."""
import pytest
import torch

import zoo
from zoo.benchmark.latency import randomize_bn_stats
from zoo.models.tcp import TCA, TSA, TCPAttention, covariance, sqrtm_newton_schulz, upper_triangle


def test_covariance_is_over_every_position_of_the_clip():
    x = torch.randn(2, 5, 40, dtype=torch.float64)
    want = torch.stack([torch.cov(v, correction=0) for v in x])
    torch.testing.assert_close(covariance(x), want)


def test_newton_schulz_converges_to_the_square_root_and_the_release_takes_3_steps():
    q, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))
    root = q @ torch.diag(torch.tensor([1.0, 1.2, 1.5, 2.0], dtype=torch.float64)) @ q.T
    a = (root @ root)[None]
    torch.testing.assert_close(sqrtm_newton_schulz(a, 30, eps=0.0), root[None])
    three = sqrtm_newton_schulz(a, 3, eps=0.0)
    assert not torch.allclose(three, root[None], atol=1e-3)  # 3 iterations: an approximation, as released
    assert torch.allclose(three, three.transpose(1, 2))  # still symmetric
    # the trace normalisation makes it scale as a square root: sqrtm(c a) = sqrt(c) sqrtm(a)
    torch.testing.assert_close(sqrtm_newton_schulz(9 * a, 3, eps=0.0), 3 * three)


def test_upper_triangle_row_by_row():
    a = torch.arange(9.0).reshape(1, 3, 3)
    assert upper_triangle(a).tolist() == [[0.0, 1.0, 2.0, 4.0, 5.0, 8.0]]


def test_temporal_conv_pads_circularly_to_t_frames():
    att = TCPAttention(4, num_frames=8)  # kernel 5: 2 frames each side
    frames = torch.arange(8.0).view(1, 1, 8, 1, 1)
    assert att.circular_pad(frames).flatten().tolist() == [6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1]
    odd = TCPAttention(4, num_frames=7)  # kernel 4: the split torch < 1.5 made, T frames out
    assert odd.circular_pad(torch.arange(7.0).view(1, 1, 7, 1, 1)).flatten().tolist() == [5, 6, 0, 1, 2, 3, 4, 5, 6, 0]
    with torch.no_grad():  # a kernel with only its first tap: frame t takes frame t - 2, around the clip
        att.conv_1d.weight.zero_()
        att.conv_1d.weight[:, :, 0] = torch.eye(4)[:, :, None, None]
        x = torch.randn(8, 4, 3, 3)
        out = att.conv_1d(att.circular_pad(x.view(1, 8, 4, 3, 3).transpose(1, 2))).transpose(1, 2).reshape(8, 4, 3, 3)
    assert torch.equal(out, x.roll(2, 0))


def test_self_attention_looks_back_and_channel_attention_around():
    torch.manual_seed(0)
    tsa, tca = TSA(8, num_frames=6).eval(), TCA(8, num_frames=6)
    with torch.no_grad():
        tsa.norm.weight.fill_(1.0)  # past its silent start
    x = torch.randn(6, 8, 3, 3)
    changed = x.clone()
    changed[3] += 1
    with torch.no_grad():
        a, b = tsa(x), tsa(changed)
        reach = [not torch.equal(a[t], b[t]) for t in range(6)]
        assert reach == [False, False, False, True, True, True]  # frame 3 reaches frames 3, 4 and 5 only
        a, b = tca(x, x), tca(changed, changed)
        gated = [not torch.allclose(a[t], b[t]) for t in range(6)]
        assert gated == [False, False, False, True, True, True]
        last = x.clone()
        last[5] += 1
        a, b = tca(x, torch.ones_like(x)), tca(last, torch.ones_like(x))
        assert not torch.allclose(a[0], b[0]) and not torch.allclose(a[1], b[1])  # the differences wrap around


def test_starts_as_plain_covariance_pooling():
    """At initialisation the attention is the identity (zero-initialised BN and temporal conv): the
    same weights without the attention give the same logits."""
    torch.manual_seed(0)
    model = randomize_bn_stats(zoo.build("tcp_tsn_r50", backbone="resnet18", dim=16, num_segments=4)).eval()
    plain = zoo.build("tcp_tsn_r50", backbone="resnet18", dim=16, num_segments=4, attention=False).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if "TCP_att" not in k})
    x = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 136)
        torch.testing.assert_close(model(x), plain(x))


def test_last_stage_keeps_stride_16():
    model = zoo.build("tcp_tsn_r50", num_classes=5)
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 8, 64, 64)).shape == (8, 2048, 4, 4)
    with pytest.raises(zoo.ZooError, match="at least 3"):
        zoo.build("tcp_tsn_r50", num_segments=2)


# the release's layout (written from the official code: TSN with TCP=True under DataParallel): 349 tensors
OFFICIAL_KEYS = {
    "module.base_model.conv1.weight": (64, 3, 7, 7),
    "module.base_model.layer4.0.downsample.0.weight": (2048, 1024, 1, 1),
    "module.base_model.TCP.layer_reduce1.weight": (256, 2048, 1, 1),
    "module.base_model.TCP.layer_reduce_bn2.num_batches_tracked": (),
    "module.base_model.TCP.TCP_att.TCA.g1.weight": (512, 128, 1, 1),
    "module.base_model.TCP.TCP_att.TSA.norm.running_var": (128,),
    "module.base_model.TCP.TCP_att.conv_1d.weight": (128, 128, 5, 1, 1),
    "module.new_fc.weight": (400, 8256),
}
# the older names its test script remaps (ops/keys_mapping.py keys_mapping_old_resnet), most specific first
_OLD = (("TCP_att.TCA.g1.", "att_module.conv_1."), ("TCP_att.TCA.g2.", "att_module.conv_2."),
        ("TCP_att.TSA.conv_phi_1.", "att_module.sp_att.conv_theta."),
        ("TCP_att.TSA.conv_phi_2.", "att_module.sp_att.conv_phi."),
        ("TCP_att.TSA.conv_phi0.", "att_module.sp_att.conv_g."), ("TCP_att.TSA.", "att_module.sp_att."),
        ("TCP_att.", "att_module."))


def _official_layout(state_dict, old=False):
    out = {}
    for k, v in state_dict.items():
        if k.startswith("fc."):
            k = "new_fc." + k[3:]
        elif k.startswith("head."):
            k = k[5:]
            if old:
                k = next((k.replace(a, b, 1) for a, b in _OLD if k.startswith(a)), k)
            k = ("base_model.layer4.iSQRT." if old else "base_model.TCP.") + k
        else:
            k = "base_model." + k[len("backbone."):]
        out["module." + k] = v.clone()
    return out


def _random_model():
    torch.manual_seed(0)
    model = randomize_bn_stats(zoo.build("tcp_tsn_r50")).eval()
    with torch.no_grad():  # the zero-initialised parts, at random
        model.head.TCP_att.TSA.norm.weight.uniform_(0.5, 1.5)
        model.head.TCP_att.conv_1d.weight.normal_(0, 0.01)
    return model


@pytest.mark.parametrize("old", [False, True], ids=["current", "iSQRT"])
def test_official_checkpoint_fetched_by_hand_loads_exactly(fetched_by_hand, old):
    model = _random_model()
    official = _official_layout(model.state_dict(), old)
    assert len(official) == 349
    if not old:
        for k, shape in OFFICIAL_KEYS.items():
            assert tuple(official[k].shape) == shape, k
    loaded = fetched_by_hand("tcp_tsn_r50.kinetics400", {"state_dict": official, "epoch": 50, "best_prec1": 75.0},
                             "model_best.pth.tar")
    assert loaded.weights_tag == "tcp_tsn_r50.kinetics400" and len(loaded.categories) == 400
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_imagenet_gcp_initialises_backbone_and_reductions():
    from zoo.models.tcp import checkpoint_filter_fn

    model = zoo.build("tcp_tsn_r50", num_classes=1000)
    gcp = {"module." + k.removeprefix("backbone.").removeprefix("head."): torch.randn_like(v)
           for k, v in model.state_dict().items()
           if k.startswith(("backbone.", "fc.", "head.layer_reduce")) and v.is_floating_point()}
    mapped = checkpoint_filter_fn({"state_dict": gcp}, model)
    assert torch.equal(mapped["backbone.layer4.2.conv3.weight"], gcp["module.layer4.2.conv3.weight"])
    assert torch.equal(mapped["head.layer_reduce2.weight"], gcp["module.layer_reduce2.weight"])
    assert torch.equal(mapped["fc.weight"], gcp["module.fc.weight"])
    assert torch.equal(mapped["head.TCP_att.conv_1d.weight"], model.state_dict()["head.TCP_att.conv_1d.weight"])
    model.load_state_dict(mapped)
    with pytest.raises(zoo.ZooError, match="covariance-pooling"):
        checkpoint_filter_fn({"state_dict": {"module.classifier.weight": torch.zeros(3, 3)}}, model)


@pytest.mark.parametrize("tag, segments", [("kinetics400", 8), ("kinetics400_16f", 16)])
def test_release_protocols(tag, segments):
    spec = zoo.resolve("tcp_tsn_r50", pretrained=tag)
    info = spec.info
    assert (info.sampling, info.num_segments, info.num_frames) == ("segment", segments, segments)
    assert info.test_views == (10, 3) and (info.crop_size, info.resize_size) == (256, 256)
    assert (info.segment_clips, info.view_aggregation) == ("shifted", "max")
    assert spec.model_args.get("num_segments", 8) == segments and len(spec.categories) == 400
    assert spec.record.page.startswith("https://drive.google.com/") and not spec.record.urls
    clips = zoo.data.build_sampler(info)(160)
    assert len(clips) == 10 and clips[9][1] == 160 // segments  # the last clip: the segment starts


def test_r152_is_a_pre_activation_resnet_fed_pixels():
    """TCPNet-R152: the official pre-activation ResNet-152 (BN on the 0-255 input, shortcut convs of the
    activated input without BN, a final BN-ReLU); its info maps frames in [0, 1] to 0-255."""
    from zoo.models.tcp import PreactBottleneck

    spec = zoo.resolve("tcp_tsn_r152", pretrained="kinetics400")
    assert spec.info.value_range == (0.0, 255.0) and spec.model_args.get("num_segments", 8) == 8
    model = zoo.build("tcp_tsn_r152", num_classes=5)
    trunk = model.backbone
    assert [len(trunk.layer1), len(trunk.layer2), len(trunk.layer3), len(trunk.layer4)] == [3, 8, 36, 3]
    assert list(trunk.layer1[0].downsample) and not any(isinstance(m, torch.nn.BatchNorm2d)
                                                         for m in trunk.layer1[0].downsample)
    assert trunk.bn_data.eps == 2e-5 and trunk.layer4[0].conv2.stride == (1, 1)
    block = PreactBottleneck(8, 2).eval()
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():  # no shortcut conv where the shape is kept: the input itself is added
        block.conv3.weight.zero_()
        assert torch.equal(block(x), x)
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 8, 64, 64)).shape == (8, 2048, 4, 4)
