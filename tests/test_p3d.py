"""P3D: block types and their cycle, temporal reduction, any clip length without scrambling,
and checkpoints in the qijiezhao/pseudo-3d-pytorch key layout."""
import re

import pytest
import torch
import torch.nn as nn

import zoo
from zoo.benchmark.latency import randomize_bn_stats
from zoo.models.p3d import P3D, PseudoConv3d


def _logits(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)


@pytest.fixture(scope="module")
def p3d63():
    torch.manual_seed(0)
    return randomize_bn_stats(zoo.build("p3d_63", num_classes=5), affine=True).eval()


def test_block_type_cycle():
    # reference notes §4.2: a global counter over the 3D blocks, res5 2D
    assert P3D(layers=(3, 4, 6, 3)).block_types == "ABCABCABCABCA222"
    types = zoo.build("p3d_199").block_types
    assert types == "ABC" * 15 + "AB" + "222"
    assert (types.count("A"), types.count("B"), types.count("C")) == (16, 16, 15)
    assert P3D(layers=(3, 4, 6, 3), st_cycle="AB").block_types == "ABABABABABABA222"
    with pytest.raises(ValueError, match="st_cycle"):
        P3D(st_cycle="ABD")


def _st_output(st, zero):
    torch.manual_seed(0)
    m = PseudoConv3d(4, st).eval()
    getattr(m, zero).weight.data.zero_()  # BN is identity-like (mean 0, bias 0) in eval
    x = torch.randn(1, 4, 3, 5, 5)
    with torch.no_grad():
        s = m.relu(m.bn_s(m.conv_s(x)))
        t = m.relu(m.bn_t(m.conv_t(x)))
        return m(x), s, t


def test_p3d_a_b_c_wiring():
    """Switching off one of S and T tells the three forms apart: A = T(S(x)) is serial,
    B = S(x) + T(x) parallel, C = S(x) + T(S(x)) serial with a skip."""
    for st, expected in (("A", "zero"), ("B", "s"), ("C", "s")):
        out, s, _ = _st_output(st, "conv_t")  # T off
        torch.testing.assert_close(out, torch.zeros_like(out) if expected == "zero" else s)
    for st, expected in (("A", "zero"), ("B", "t"), ("C", "zero")):
        out, _, t = _st_output(st, "conv_s")  # S off
        torch.testing.assert_close(out, torch.zeros_like(out) if expected == "zero" else t)


def test_temporal_reduction_by_pooling(p3d63):
    seen = {}
    hooks = [getattr(p3d63, n).register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o.shape))
             for n in ("stem", "layer1", "layer2", "layer3", "layer4")]
    with torch.no_grad():
        p3d63.forward_features(torch.randn(1, 3, 16, 64, 64))
    for h in hooks:
        h.remove()
    # convs keep time; only the pools halve it: 16 -> 8 (stem) -> 4 -> 2 -> 1
    assert seen["stem"][2:] == (8, 16, 16)
    assert seen["layer1"][1:] == (256, 8, 16, 16)
    assert seen["layer2"][1:] == (512, 4, 8, 8)
    assert seen["layer3"][1:] == (1024, 2, 4, 4)
    assert seen["layer4"] == (1, 2048, 2, 2)  # 2D: frames folded into the batch


@pytest.mark.parametrize("t", [8, 16, 32])
def test_any_clip_length_clips_stay_independent(p3d63, t):
    g = torch.Generator().manual_seed(t)
    x = torch.randn(2, 3, t, 32, 32, generator=g)
    with torch.no_grad():
        feats = p3d63.forward_features(x)
    assert feats.shape == (2, 2048, max(1, t // 16), 1, 1)
    batched = p3d63.forward_head(feats)
    assert batched.shape == (2, 5)
    # each clip's output does not depend on the other clip in the batch ...
    torch.testing.assert_close(batched[:1], _logits(p3d63, x[:1]), rtol=1e-4, atol=1e-5)
    # ... and changing one clip changes only its own output
    y = x.clone()
    y[1] = torch.randn(3, t, 32, 32, generator=g)
    changed = _logits(p3d63, y)
    torch.testing.assert_close(changed[0], batched[0], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(changed[1], batched[1])


def test_res5_is_2d_per_frame(p3d63):
    """With T=32 two frames reach res5; each is processed alone, in its own channels."""
    entering = {}
    hook = p3d63.tpool3.register_forward_hook(lambda m, i, o: entering.setdefault("x", o))
    x = torch.randn(2, 3, 32, 64, 64)
    with torch.no_grad():
        feats = p3d63.forward_features(x)
        hook.remove()
        res4 = entering["x"]
        assert res4.shape[2] == 2 and feats.shape[2] == 2
        for k in range(2):
            torch.testing.assert_close(feats[:, :, k], p3d63.layer4(res4[:, :, k]), rtol=1e-5, atol=1e-5)
    assert all(isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Sequential, type(p3d63.layer4[0])))
               for m in p3d63.layer4.modules())


# -- qijiezhao/pseudo-3d-pytorch layout, written out from its key names (reference notes §4.2) --
_PORT_3D = {"conv2.conv_s": "conv2", "conv2.bn_s": "bn2", "conv2.conv_t": "conv3", "conv2.bn_t": "bn3",
            "conv3": "conv4", "bn3": "bn4"}
_PORT_2D = {"conv2": "conv_normal", "bn2": "bn_normal", "conv3": "conv4", "bn3": "bn4"}


def _to_port_layout(model: P3D):
    out = {}
    for k, v in model.state_dict().items():
        m = re.match(r"^(layer(\d)\.\d+)\.(.+)\.([^.]+)$", k)
        if k.startswith("stem."):
            k = k.replace("stem.conv.", "conv1_custom.").replace("stem.bn.", "bn1.")
        elif m:
            table = _PORT_2D if m[2] == "4" else _PORT_3D
            k = f"{m[1]}.{table.get(m[3], m[3])}.{m[4]}"
        out[k] = v
    return out


def test_port_checkpoint_round_trip(p3d63, tmp_path):
    port = _to_port_layout(p3d63)
    # the port's names and shapes: S 1x3x3 in conv2, T 3x1x1 in conv3, 1x1x1 expansion in conv4, res5 2D
    assert port["conv1_custom.weight"].shape == (64, 3, 1, 7, 7)
    assert port["layer1.0.conv2.weight"].shape == (64, 64, 1, 3, 3)
    assert port["layer1.0.conv3.weight"].shape == (64, 64, 3, 1, 1)
    assert port["layer1.0.conv4.weight"].shape == (256, 64, 1, 1, 1)
    assert port["layer2.0.conv1.weight"].shape == (128, 256, 1, 1, 1)
    assert port["layer4.0.conv_normal.weight"].shape == (512, 512, 3, 3)
    assert port["layer4.0.downsample.0.weight"].shape == (2048, 1024, 1, 1)
    assert port["fc.weight"].shape == (5, 2048)
    assert len(port) == 398  # the port's P3D63 state dict, num_batches_tracked included
    # as released: a {'state_dict': ...} from DataParallel, saved before BN step counters existed
    sd = {f"module.{k}": v for k, v in port.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "p3d_rgb_63.checkpoint.pth.tar"
    torch.save({"epoch": 1, "arch": "P3D63", "state_dict": sd, "best_prec1": 0.0}, path)
    loaded = zoo.build("p3d_63", num_classes=5, weights=path)
    assert loaded.load_report.filled and not loaded.load_report.reinitialised
    x = torch.randn(2, 3, 16, 32, 32)
    torch.testing.assert_close(_logits(loaded, x), _logits(p3d63, x), rtol=0, atol=0)
    # a new label set re-initialises only the classifier
    report = zoo.build("p3d_63", num_classes=7, weights=path).load_report
    assert sorted(report.reinitialised) == ["fc.bias", "fc.weight"]


def test_zoo_checkpoint_round_trip(p3d63, tmp_path):
    path = tmp_path / "p3d63.pth"
    torch.save(p3d63.state_dict(), path)
    loaded = zoo.build("p3d_63", num_classes=5, weights=path)
    x = torch.randn(1, 3, 16, 32, 32)
    torch.testing.assert_close(_logits(loaded, x), _logits(p3d63, x), rtol=0, atol=0)


def test_flow_model_takes_two_channels():
    model = P3D(layers=(1, 1, 1, 1), in_chans=2, num_classes=3)
    assert model.stem.conv.weight.shape[1] == 2
    assert _logits(model, torch.randn(1, 2, 16, 32, 32)).shape == (1, 3)
    with pytest.raises(ValueError, match=r"expects input \[B, 2, T, H, W\] \(built with in_chans=2\)"):
        model(torch.randn(1, 3, 16, 32, 32))


@pytest.mark.parametrize("shape", [(2, 16, 3, 32, 32), (2, 3, 32, 32)])
def test_wrong_input_shape_raises(p3d63, shape):
    with pytest.raises(ValueError, match=r"expects input \[B, 3, T, H, W\]"):
        p3d63(torch.randn(*shape))
