"""TSN/TSM: the shift op, order (in)sensitivity, official checkpoint layouts, weight loading."""
import functools
import http.server
import re
import shutil
import threading

import pytest
import torch

import zoo
from zoo.benchmark.latency import randomize_bn_stats
from zoo.models.tsm import TemporalShift, TSMStream, _temporal_shift_op, shifted_blocks, temporal_shift


def test_shift_moves_exactly_the_right_channels():
    n, t, c = 2, 4, 16  # fold = 2 channels each way with fold_div=8
    x = torch.arange(n * t * c, dtype=torch.float32).view(n, t, c, 1, 1).expand(n, t, c, 3, 3).contiguous()
    out = temporal_shift(x.view(n * t, c, 3, 3), num_segments=t, fold_div=8).view(n, t, c, 3, 3)
    for b in range(n):
        for f in range(t):
            for ch in range(c):
                if ch < 2:  # t <- t+1, zero at the last frame
                    want = x[b, f + 1, ch] if f + 1 < t else torch.zeros(3, 3)
                elif ch < 4:  # t <- t-1, zero at the first frame
                    want = x[b, f - 1, ch] if f > 0 else torch.zeros(3, 3)
                else:
                    want = x[b, f, ch]
                assert torch.equal(out[b, f, ch], want), (b, f, ch)


def test_shift_never_mixes_clips_of_a_batch():
    x = torch.randn(3 * 8, 16, 2, 2)
    out = temporal_shift(x, 8)
    out_single = temporal_shift(x[8:16], 8)
    assert torch.equal(out[8:16], out_single)


def test_shift_keeps_channels_last():
    x = torch.randn(8, 16, 4, 4).to(memory_format=torch.channels_last)
    out = temporal_shift(x, 8)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, temporal_shift(x.contiguous(), 8))


@pytest.mark.parametrize("online", [False, True])
def test_shift_custom_op_matches_eager_and_its_backward_is_the_adjoint(online):
    x = torch.randn(2 * 8, 16, 3, 3, requires_grad=True)
    grad = torch.randn(2 * 8, 16, 3, 3)
    eager = temporal_shift(x, 8, online=online)
    (want,) = torch.autograd.grad(eager, x, grad)
    op = _temporal_shift_op(x, 8, 8, online)
    (got,) = torch.autograd.grad(op, x, grad)
    assert torch.equal(op, eager)
    assert torch.equal(got, want)
    # the adjoint: <shift(x), g> == <x, shift'(g)>
    assert torch.allclose((eager * grad).sum(), (x * got).sum(), rtol=1e-5)
    torch.library.opcheck(_temporal_shift_op, (x, 8, 8, online))


def test_online_shift_takes_only_the_past():
    n, t, c = 2, 4, 16  # fold = 2 channels, from the previous frame
    x = torch.randn(n, t, c, 3, 3)
    out = temporal_shift(x.view(n * t, c, 3, 3), num_segments=t, fold_div=8, online=True).view(n, t, c, 3, 3)
    assert torch.equal(out[:, 1:, :2], x[:, :-1, :2]) and not out[:, 0, :2].any()
    assert torch.equal(out[:, :, 2:], x[:, :, 2:])
    # no frame sees the future: changing the last frame changes no earlier output
    y = x.clone()
    y[:, -1] += 1
    late = temporal_shift(y.view(n * t, c, 3, 3), t, 8, online=True).view(n, t, c, 3, 3)
    assert torch.equal(late[:, :-1], out[:, :-1])


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile on CPU needs a C compiler")
def test_compiled_tsm_keeps_logits():
    model = randomize_bn_stats(zoo.build("tsm_r50", num_classes=5, backbone="resnet18"), affine=True).eval()
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        ref = model(x)
    fast = zoo.optimize(model, compile=True, example=x)
    torch.testing.assert_close(fast(x), ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


def _order_outputs(name, **kw):
    model = zoo.build(name, num_classes=6, backbone="resnet18", **kw).eval()
    torch.nn.init.normal_(model.fc.weight, std=1.0)  # the official 0.001 init makes logits ~1e-3
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        return model(x), model(x.flip(2)), model(x[:, :, torch.randperm(8)])


def test_tsn_is_frame_order_invariant():
    out, rev, shuf = _order_outputs("tsn_r50")
    torch.testing.assert_close(out, rev, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out, shuf, rtol=1e-5, atol=1e-5)


def test_tsm_is_frame_order_sensitive():
    out, rev, shuf = _order_outputs("tsm_r50")
    scale = out.abs().max()
    assert (out - rev).abs().max() > 1e-2 * scale
    assert (out - shuf).abs().max() > 1e-2 * scale


def _shifted(model):
    """The convs whose input is shifted (blockres), or the blocks shifted whole (block placement)."""
    return [f"{n}.conv1" if place == "blockres" else n for n, place in shifted_blocks(model)]


def test_shift_placement_matches_official_rules():
    r50 = zoo.build("tsm_r50")
    assert len(_shifted(r50)) == 16 and all(n.endswith(".conv1") for n in _shifted(r50))
    r101 = zoo.build("tsm_r101")
    names = _shifted(r101)
    assert len(names) == 18
    assert all(int(n.split(".")[2]) % 2 == 0 for n in names)  # every other block, all stages
    block = zoo.build("tsm_r50", shift_place="block", backbone="resnet18")
    assert len(_shifted(block)) == 8 and all(isinstance(m.pre_block, TemporalShift) for m in block.backbone.layer1)
    assert not _shifted(zoo.build("tsn_r50"))


def official_layout(model, place="blockres"):
    """Rewrite a zoo TSM state dict the way the official DataParallel checkpoint names it."""
    out = {}
    for k, v in model.state_dict().items():
        if k.startswith("fc."):
            k = "new_fc." + k[3:]
        else:
            k = "base_model." + k[len("backbone."):]
            if place == "block":  # the whole block wrapped: layerX.N.net.*
                k = re.sub(r"^(layer\d\.\d+)\.", r"\1.net.", k)
            elif place == "tpool":
                k = k.replace("layer2.", "layer2.net.", 1)
        out["module." + k] = v
    if place == "blockres":
        shifted = {f"module.base_model.{n[len('backbone.'):]}.weight" for n in _shifted(model)}
        out = {(k.replace(".weight", ".net.weight") if k in shifted else k): v for k, v in out.items()}
    return {"epoch": 45, "arch": "resnet", "state_dict": out, "best_prec1": 61.2}


@pytest.mark.parametrize("name,kw,place", [
    ("tsm_r50", {}, "blockres"),
    ("tsm_r101", dict(), "blockres"),
    ("tsm_r50", dict(shift_place="block"), "block"),
    ("tsm_r50", dict(temporal_pool=True), "tpool"),
    ("tsn_r50", {}, "none"),
])
def test_official_checkpoint_round_trip(tmp_path, name, kw, place):
    kw.setdefault("backbone", "resnet18") if name != "tsm_r101" else None
    src = zoo.build(name, num_classes=7, **kw).eval()
    randomize_bn_stats(src)  # non-trivial BN statistics, so a wrong mapping shows
    ckpt = official_layout(src, place)
    if place == "blockres":
        assert any(".conv1.net.weight" in k for k in ckpt["state_dict"])
    path = tmp_path / "TSM_official.pth"
    torch.save(ckpt, path)
    dst = zoo.build(name, num_classes=7, weights=str(path), **kw).eval()
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.equal(src(x), dst(x))
    assert not dst.load_report.reinitialised


def test_r101_checkpoint_has_net_keys_only_on_even_blocks():
    ckpt = official_layout(zoo.build("tsm_r101"))["state_dict"]
    net = [k for k in ckpt if ".net." in k]
    assert len(net) == 18 and all(int(k.split(".")[3]) % 2 == 0 for k in net)
    assert "module.base_model.layer3.1.conv1.weight" in ckpt


def test_new_num_classes_reinitialises_only_the_classifier(tmp_path):
    src = zoo.build("tsm_r50", num_classes=174, backbone="resnet18")
    path = tmp_path / "ckpt.pth"
    torch.save(official_layout(src), path)
    with pytest.warns(UserWarning, match="re-initialised for 10 classes"):
        dst = zoo.build("tsm_r50", num_classes=10, backbone="resnet18", weights=str(path))
    assert dst.fc.out_features == 10
    assert sorted(dst.load_report.reinitialised) == ["fc.bias", "fc.weight"]
    torch.testing.assert_close(dst.backbone.conv1.weight, src.backbone.conv1.weight)


def test_other_key_problems_are_errors_listing_keys(tmp_path):
    src = zoo.build("tsm_r50", num_classes=5, backbone="resnet18")
    sd = official_layout(src)
    del sd["state_dict"]["module.base_model.layer1.0.bn1.weight"]
    sd["state_dict"]["module.base_model.extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    with pytest.raises(RuntimeError, match=r"missing keys \(1\): backbone.layer1.0.bn1.weight.*"
                                           r"unexpected keys \(1\): backbone.extra.weight"):
        zoo.build("tsm_r50", num_classes=5, backbone="resnet18", weights=str(path))


def test_zoo_layout_and_old_checkpoints_without_bn_counters(tmp_path):
    src = zoo.build("tsm_r50", num_classes=5, backbone="resnet18").eval()
    sd = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, tmp_path / "zoo.pth")
    dst = zoo.build("tsm_r50", num_classes=5, backbone="resnet18", weights=str(tmp_path / "zoo.pth")).eval()
    assert dst.load_report.filled and not dst.load_report.reinitialised
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.equal(src(x), dst(x))


RAN = []


def _record_run():
    RAN.append(True)
    return "ran"


class UnsafeObject:  # an arbitrary class whose unpickling would call code: it must never run
    def __reduce__(self):
        return (_record_run, ())


def test_missing_and_unsafe_checkpoints_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        zoo.build("tsm_r50", weights=str(tmp_path / "nope.pth"))

    # weights_only refuses the object; the plain-data reader keeps an inert placeholder instead of running it
    torch.save({"state_dict": {}, "obj": UnsafeObject()}, tmp_path / "evil.pth")
    with pytest.raises(RuntimeError, match="missing keys"):
        zoo.build("tsm_r50", weights=str(tmp_path / "evil.pth"))
    assert RAN == [] and "not loaded" in repr(zoo.models.read_checkpoint(tmp_path / "evil.pth")["obj"])
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        zoo.build("tsm_r50", weights=str(tmp_path / "broken.pth"))


def test_weights_from_url_through_iopath(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # iopath caches downloads under ~/.torch
    src = zoo.build("tsm_r50", num_classes=5, backbone="resnet18").eval()
    served = tmp_path / "served"
    served.mkdir()
    torch.save(official_layout(src), served / "tsm_url.pth")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/tsm_url.pth"
        dst = zoo.build("tsm_r50", num_classes=5, backbone="resnet18", weights=url).eval()
    finally:
        server.shutdown()
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.equal(src(x), dst(x))


@pytest.mark.parametrize("place", ["blockres", "block"])
def test_online_tsm_streamed_frame_by_frame_equals_offline(place):
    """Lin et al. Sec. 3.3: streaming T frames one at a time (each shift caching the channels it
    hands on) gives the offline online-TSM's logits on those T frames: the mean of per-frame logits."""
    model = zoo.build("tsm_r50", backbone="resnet18", num_classes=5, online=True, shift_place=place, dropout=0.0)
    model = randomize_bn_stats(model, affine=True).eval()
    clip = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        offline = model(clip)
    with TSMStream(model) as stream:
        logits = torch.stack([stream(clip[:, :, t]) for t in range(8)], 1)
        assert stream.frames == 8
        assert float((logits.mean(1) - offline).abs().max() / offline.abs().max()) <= 1e-5
        stream.reset()  # a new stream starts from zeros again
        again = torch.stack([stream(clip[:, :, t]) for t in range(8)], 1)
        assert torch.equal(again, logits)
    with torch.no_grad():
        assert torch.equal(model(clip), offline)  # closed: offline again
    # per-frame logits at time t depend on frames <= t only: the first 4 equal a 4-frame offline run
    short = zoo.build("tsm_r50", backbone="resnet18", num_classes=5, online=True, shift_place=place,
                      num_segments=4, dropout=0.0).eval()
    short.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(short(clip[:, :, :4]), logits[:, :4].mean(1), rtol=1e-5, atol=1e-6)


def test_online_tsm_trains_and_streams_refuse_misuse():
    model = zoo.build("tsm_r50", backbone="resnet18", num_classes=3, num_segments=4, online=True)
    loss = model(torch.randn(2, 3, 4, 32, 32)).logsumexp(1).sum()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="eval-mode model"):
        TSMStream(model)
    with pytest.raises(ValueError, match="online=True"):
        TSMStream(zoo.build("tsm_r50", backbone="resnet18").eval())
    with pytest.raises(ValueError, match="temporal_pool"):
        zoo.build("tsm_r50", online=True, temporal_pool=True)
    with TSMStream(model.eval()) as stream:
        stream(torch.randn(2, 3, 32, 32))
        with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
            stream(torch.randn(2, 3, 4, 32, 32))
        with pytest.raises(ValueError, match="keeps its batch and frame size"):
            stream(torch.randn(1, 3, 32, 32))
    with pytest.raises(RuntimeError, match="closed"):
        stream(torch.randn(2, 3, 32, 32))
