"""PAN: the PA module, VAP, Lite/Full/En networks, official checkpoint layouts, reference counts."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import zoo
from zoo.flops import count_flops, count_params
from zoo.models import read_checkpoint
from zoo.models.pan import PA, VAP, PANEnsemble, PANNet, checkpoint_filter_fn, widen_conv
from zoo.models.tsm import shifted_blocks

STATIC_PA = math.sqrt(8) * 1e-6  # || 0 + 1e-6 ||_2 over 8 channels


def _pa(std=0.1):
    pa = PA(4)
    nn.init.normal_(pa.conv.weight, std=std)  # the official 0.001 init gives tiny maps
    nn.init.normal_(pa.conv.bias, std=std)
    return pa


# -- PA ------------------------------------------------------------------------------------
def test_pa_of_static_clip_is_the_offset_only():
    frame = torch.randn(3, 1, 3, 20, 24)
    out = _pa()(frame.expand(3, 4, 3, 20, 24))
    assert out.shape == (3, 3, 20, 24)
    torch.testing.assert_close(out, torch.full_like(out, STATIC_PA), rtol=0, atol=1e-6)


def test_pa_lights_up_only_around_a_moving_edge():
    h, w, start = 16, 40, 12
    frames = torch.zeros(1, 4, 3, h, w)
    for i in range(4):
        frames[0, i, :, :, start + i:] = 1.0  # a vertical edge moving right by 1 px per frame
    out = _pa()(frames)[0]
    cols = torch.arange(w)
    for i in range(3):
        # conv(x_i) and conv(x_{i+1}) differ only within the 7x7 kernel's reach of the two edge columns
        near = (cols >= start + i - 3) & (cols <= start + i + 1 + 3)
        assert out[i][:, near].max() > 1e-2, i
        torch.testing.assert_close(out[i][:, ~near], torch.full((h, int((~near).sum())), STATIC_PA),
                                   rtol=0, atol=1e-6)


def test_pa_matches_pairwise_reference_formula():
    pa = _pa()
    x = torch.randn(5, 4, 3, 12, 10)
    feats = [pa.conv(x[:, i]) for i in range(4)]
    ref = torch.stack([torch.norm(feats[i] - feats[i + 1] + 1e-6, p=2, dim=1) for i in range(3)], 1)
    torch.testing.assert_close(pa(x), ref, rtol=1e-5, atol=1e-6)
    # the legacy PairwiseDistance semantics: the same op with the channel dim moved last
    last = [f.flatten(2).transpose(1, 2) for f in feats]
    legacy = torch.stack([nn.PairwiseDistance(p=2)(last[i], last[i + 1]).view(5, 12, 10) for i in range(3)], 1)
    torch.testing.assert_close(pa(x), legacy, rtol=1e-5, atol=1e-6)


def test_pa_is_differentiable_and_its_conv_learns():
    pa = _pa().double()
    x = torch.randn(1, 4, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(pa, (x,))
    pa.zero_grad()
    pa(x).sum().backward()
    assert pa.conv.weight.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0


def test_pa_difference_first_equals_the_two_conv_form():
    pa = _pa()
    x = torch.randn(5, 4, 3, 12, 10)
    ref = pa(x)
    pa.prepare_inference()
    assert pa.difference_first and "difference_first=True" in repr(pa)
    torch.testing.assert_close(pa(x), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("difference_first", [False, True])
def test_pa_runs_in_its_conv_weight_layout(difference_first, monkeypatch):
    pa = _pa()
    pa.difference_first = difference_first
    x = torch.randn(2, 4, 3, 12, 10)
    seen = []
    conv2d = F.conv2d
    monkeypatch.setattr(F, "conv2d", lambda inp, *a, **k: seen.append(inp) or conv2d(inp, *a, **k))
    ref = pa(x)  # as built: the default layout, as the official PAN code runs it
    pa.conv.to(memory_format=torch.channels_last)  # what zoo.optimize does to every conv
    out = pa(x)
    assert [t.is_contiguous() for t in seen] == [True, False]
    assert seen[1].is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_pa_difference_first_is_closer_in_bf16():
    pa = _pa(std=0.3)
    # a nearly static clip: bf16 rounds two nearly equal feature maps before the two-conv form subtracts them
    x = torch.randn(4, 1, 3, 16, 16).expand(4, 4, 3, 16, 16) + 0.01 * torch.randn(4, 4, 3, 16, 16)
    ref = pa(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        two_conv = pa(x).float()
        pa.prepare_inference()
        diff_first = pa(x).float()
    assert (diff_first - ref).abs().mean() < 0.5 * (two_conv - ref).abs().mean()


def test_optimize_switches_every_pa_to_difference_first():
    model = zoo.build("pan_en_r50", num_classes=5, backbone="resnet18").eval()
    fast = zoo.optimize(model, example=torch.randn(1, 3, model.num_frames, 32, 32))
    assert [m.difference_first for m in fast.modules() if isinstance(m, PA)] == [True, True]
    assert [m.difference_first for m in model.modules() if isinstance(m, PA)] == [False, False]


def test_pa_rejects_wrong_segment_shape():
    with pytest.raises(ValueError, match=r"\[N, 4, 3, H, W\]"):
        PA(4)(torch.randn(2, 3, 3, 8, 8))


# -- VAP -----------------------------------------------------------------------------------
def test_vap_slots_are_dilated_temporal_max_pools():
    vap = VAP(8, 16, 5)
    assert vap.num_slots == 7 and vap.timescales == (1, 2, 4)
    assert vap.tes[0].weight.shape == (28, 7) and vap.tes[2].weight.shape == (7, 28)
    assert vap.tes[0].bias is None and vap.tes[2].bias is None
    x = torch.randn(3, 8, 16)
    # the official op: MaxPool over time with kernel T/s, stride 1, dilation s, concatenated
    xt = x.transpose(1, 2)
    ref = torch.cat([F.max_pool1d(xt, 8 // s, stride=1, dilation=s) for s in (1, 2, 4)], 2).transpose(1, 2)
    torch.testing.assert_close(vap.pool(x), ref, rtol=0, atol=0)
    torch.testing.assert_close(vap.pool(x)[:, 2], x[:, 1::2].amax(1), rtol=0, atol=0)


def test_vap_weights_sum_to_one_per_sample():
    vap = VAP(8, 16, 5)
    nn.init.normal_(vap.tes[0].weight, std=1.0)
    nn.init.normal_(vap.tes[2].weight, std=1.0)
    slots = vap.pool(torch.randn(4, 8, 16))
    w = vap.slot_weights(slots)
    assert w.shape == (4, 7) and (w > 0).all()
    torch.testing.assert_close(w.sum(1), torch.ones(4))
    assert not torch.allclose(w[0], w[1])  # input-dependent
    emb = vap(torch.randn(4, 8, 16), pre_logits=True)
    assert emb.shape == (4, 16) and vap(torch.randn(4, 8, 16)).shape == (4, 5)


def test_vap_timescales_for_16_segments_and_bad_lengths():
    assert VAP(16, 8, 3).num_slots == 15
    for t in (1, 10):
        with pytest.raises(ValueError, match="num_segments"):
            VAP(t, 8, 3)


# -- networks ------------------------------------------------------------------------------
def test_widen_conv_averages_rgb_and_replicates():
    conv = nn.Conv2d(3, 4, 7, 2, 3, bias=False)
    new = widen_conv(conv, 6)
    assert new.weight.shape == (4, 6, 7, 7) and new.stride == (2, 2) and new.bias is None
    for c in range(6):
        torch.testing.assert_close(new.weight[:, c], conv.weight.mean(1))


def test_lite_feeds_first_frame_and_its_pa_maps():
    net = zoo.build("pan_lite_r50", num_classes=5, backbone="resnet18").eval()
    conv1 = net.backbone.conv1.weight
    assert conv1.shape[1] == 6 and all(torch.equal(conv1[:, 0], conv1[:, c]) for c in range(6))
    x = torch.randn(2, 3, 32, 16, 16)
    inp = net.network_input(x)
    assert inp.shape == (16, 6, 16, 16)
    seg = x.view(2, 3, 8, 4, 16, 16).permute(0, 2, 3, 1, 4, 5).reshape(16, 4, 3, 16, 16)
    torch.testing.assert_close(inp[:, :3], seg[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(inp[:, 3:], net.pa(seg))


def _full(**kw):
    model = zoo.build("pan_full_r50", num_classes=5, backbone="resnet18", **kw).eval()
    for net in model.nets.values():
        nn.init.normal_(net.fc.pred.weight, std=1.0)
        nn.init.normal_(net.pa.conv.weight, std=0.1) if net.pa is not None else None
    return model


def test_full_rgb_stream_sees_the_segment_centre_frame_and_pa_the_rest():
    """The official protocol: the RGB network takes the frame its own loader picks in each segment
    (the 5th input frame of a segment), the PA network the 4 consecutive frames."""
    model = _full()
    assert isinstance(model, PANEnsemble) and model.streams == ("rgb", "pa") and model.num_frames == 40
    assert model.rgb_net.pa is None and model.rgb_net.backbone.conv1.in_channels == 3
    assert model.pa_net.backbone.conv1.in_channels == 3  # PA maps into the unmodified conv1
    x = torch.randn(2, 3, 40, 32, 32)
    consecutive, centres = x.clone(), x.clone()
    consecutive[:, :, 4::5] = torch.randn_like(x[:, :, 4::5])  # change only the RGB frames
    centres[:, :, [i for i in range(40) if i % 5 != 4]] = torch.randn(2, 3, 32, 32, 32)  # only the PA frames
    with torch.no_grad():
        sx, sc, sp = model.forward_streams(x), model.forward_streams(consecutive), model.forward_streams(centres)
        torch.testing.assert_close(model(x), (sx["rgb"] + sx["pa"]) / 2)
        alone = model.rgb_net.forward_head(model.rgb_net.forward_frames(model.rgb_net.frames_to_batch(x[:, :, 4::5])))
    torch.testing.assert_close(sx["rgb"], alone, rtol=0, atol=0)
    torch.testing.assert_close(sx["pa"], sc["pa"], rtol=0, atol=0)
    torch.testing.assert_close(sx["rgb"], sp["rgb"], rtol=0, atol=0)
    assert (sx["rgb"] - sc["rgb"]).abs().max() > 1e-3 * sx["rgb"].abs().max()
    assert model.get_classifier() == [model.rgb_net.fc.pred, model.pa_net.fc.pred]
    assert zoo.model_info("pan_full_r50").input_shape == (3, 40, 224, 224)


def test_full_without_centre_frame_takes_each_segments_first_frame():
    model = _full(centre_frame=False)
    x = torch.randn(2, 3, 32, 32, 32)
    y = x.clone()
    y[:, :, 1::4] = torch.randn_like(y[:, :, 1::4])  # change every frame except each segment's first
    with torch.no_grad():
        sx, sy = model.forward_streams(x), model.forward_streams(y)
    torch.testing.assert_close(sx["rgb"], sy["rgb"], rtol=0, atol=0)
    assert (sx["pa"] - sy["pa"]).abs().max() > 1e-3 * sx["pa"].abs().max()


@pytest.mark.parametrize("name", ["pan_lite_r50", "pan_full_r50", "pan_en_r50"])
def test_pan_is_segment_order_sensitive(name):
    model = zoo.build(name, num_classes=6, backbone="resnet18").eval()
    nets = model.nets.values() if isinstance(model, PANEnsemble) else [model]
    for net in nets:
        nn.init.normal_(net.fc.pred.weight, std=1.0)
    t = model.num_frames
    x = torch.randn(2, 3, t, 32, 32)
    seg_order = torch.randperm(8)
    shuffled = x.view(2, 3, 8, t // 8, 32, 32)[:, :, seg_order].reshape_as(x)
    with torch.no_grad():
        out, rev, shuf = model(x), model(x.view(2, 3, 8, t // 8, 32, 32).flip(2).reshape_as(x)), model(shuffled)
    scale = out.abs().max()
    assert (out - rev).abs().max() > 1e-2 * scale
    assert (out - shuf).abs().max() > 1e-2 * scale


def test_wrong_frame_count_names_segments_times_frames():
    model = zoo.build("pan_lite_r50", num_classes=5, backbone="resnet18")
    with pytest.raises(ValueError, match=r"\[B, 3, 32, H, W\]"):
        model(torch.randn(1, 3, 8, 32, 32))
    with pytest.raises(ValueError, match="modality"):
        PANNet(modality="flow")
    with pytest.raises(ValueError, match="streams"):
        PANEnsemble(streams=("rgb", "rgb"))


# -- official checkpoints --------------------------------------------------------------------
def official_state_dict(net: PANNet):
    """The official DataParallel layout of a PANNet, built from its own weights."""
    shifted = {f"{n}.conv1.weight" for n, place in shifted_blocks(net) if place == "blockres"}
    out = {}
    for k, v in net.state_dict().items():
        if k in shifted:
            k = k[:-len(".weight")] + ".net.weight"
        if k.startswith("pa.conv."):
            k = "PA.shallow_conv." + k[len("pa.conv."):]
        elif k.startswith("fc.tes."):
            k = "base_model.fc.TES." + k[len("fc.tes."):]
        elif k.startswith("fc."):
            k = "base_model." + k
        else:
            k = "base_model." + k[len("backbone."):]
        out["module." + k] = v.clone()
    return out


def _save_official(net, path):
    torch.save({"epoch": 80, "arch": "resnet18", "state_dict": official_state_dict(net), "best_prec1": 50.0}, path)
    return str(path)


def _randomise(model):
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
        for name, b in model.named_buffers():
            if name.endswith("running_var"):
                b.uniform_(0.5, 2.0)
            elif name.endswith("running_mean"):
                b.normal_(0, 0.1)
    return model.eval()


def test_official_lite_layout_round_trips(tmp_path):
    src = _randomise(zoo.build("pan_lite_r50", backbone="resnet18"))
    sd = official_state_dict(src)
    assert "module.PA.shallow_conv.weight" in sd and "module.base_model.fc.TES.0.weight" in sd
    assert "module.base_model.layer1.0.conv1.net.weight" in sd and sd["module.base_model.conv1.weight"].shape[1] == 6
    path = _save_official(src, tmp_path / "PAN_Lite_somethingv2_resnet18.pth.tar")
    dst = zoo.build("pan_lite_r50", backbone="resnet18", weights=path).eval()
    x = torch.randn(1, 3, 32, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(dst(x), src(x), rtol=0, atol=0)
    assert not dst.load_report.reinitialised


@pytest.mark.parametrize("name,streams", [("pan_full_r50", ("rgb", "pa")), ("pan_en_r50", ("lite", "rgb", "pa"))])
def test_official_ensemble_files_round_trip_in_order(tmp_path, name, streams):
    src = _randomise(zoo.build(name, backbone="resnet18"))
    assert src.streams == streams
    paths = [_save_official(src.nets[s], tmp_path / f"PAN_{s}.pth.tar") for s in streams]
    dst = zoo.build(name, backbone="resnet18", weights=paths).eval()
    x = torch.randn(1, 3, 40, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(dst(x), src(x), rtol=0, atol=0)
    # the same files for another label set: every stream's classifier is re-initialised
    with pytest.warns(UserWarning, match="re-initialised for 7 classes"):
        other = zoo.build(name, backbone="resnet18", num_classes=7, weights=paths)
    assert sorted(other.load_report.reinitialised) == sorted(
        f"{s}_net.fc.pred.{p}" for s in streams for p in ("weight", "bias"))
    # wrong order or count: a clear error naming the expected order
    loaded = [read_checkpoint(p) for p in paths]
    with pytest.raises(ValueError, match="in that order"):
        checkpoint_filter_fn(loaded[::-1], src)
    with pytest.raises(ValueError, match=f"takes {len(streams)} checkpoint files"):
        checkpoint_filter_fn(loaded[:1], src)


def test_zoo_layout_and_mismatched_single_file(tmp_path):
    src = _randomise(zoo.build("pan_full_r50", backbone="resnet18"))
    torch.save(src.state_dict(), tmp_path / "zoo.pth")
    dst = zoo.build("pan_full_r50", backbone="resnet18", weights=tmp_path / "zoo.pth").eval()
    x = torch.randn(1, 3, 40, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(dst(x), src(x), rtol=0, atol=0)
    rgb = _save_official(src.rgb_net, tmp_path / "PAN_RGB.pth.tar")
    with pytest.raises(ValueError, match="PAN RGB network but a PAN Lite one is expected"):
        zoo.build("pan_lite_r50", backbone="resnet18", weights=rgb)
    with pytest.raises(ValueError, match=r"weights=\[\.\.\.\]"):
        zoo.build("pan_full_r50", backbone="resnet18", weights=rgb)


# -- reference counts (official code, fvcore, 174 classes) ------------------------------------
@pytest.mark.parametrize("name,params", [("pan_lite_r50", 23_875_542), ("pan_full_r50", 47_731_084),
                                         ("pan_en_r50", 71_606_626)])
def test_params_equal_official_counts(name, params):
    assert count_params(zoo.build(name)) == params


def test_lite_flops_match_official_fvcore_count():
    # Full/En (sums of their networks) are checked at 224 by the registry-wide tests/test_flops.py
    model = zoo.build("pan_lite_r50")
    measured = count_flops(model, (1, *model.info.input_shape)).gflops
    assert measured == pytest.approx(35.708, rel=0.01)
    assert model.info.ref_gflops == pytest.approx(35.708, rel=1e-3)
