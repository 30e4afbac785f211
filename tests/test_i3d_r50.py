"""I3D ResNet-50: layout against PySlowFast / PyTorchVideo, cost, the official checkpoint layouts
and parity with PyTorchVideo's hub ``i3d_r50``."""
import pytest
import torch

import zoo
from zoo.benchmark.latency import randomize_bn_stats
from zoo.flops import count_flops, count_params
from zoo.models.i3d_resnet import PTV_LAYOUT, checkpoint_filter_fn
from zoo.models.slowfast import block_temporal_kernels, to_caffe2_layout, to_pyslowfast_layout, to_pytorchvideo_layout

# conv "a" temporal kernel of every block, written out (PySlowFast _TEMPORAL_KERNEL_BASIS["i3d"]
# repeated over depths 3, 4, 6, 3)
EXPECTED_KT = {"res2": [3, 3, 3], "res3": [3, 1, 3, 1], "res4": [3, 1, 3, 1, 3, 1], "res5": [1, 3, 1]}


def randomize(model):
    """Non-trivial BN statistics and affine parameters, small residual branches (activations O(1)),
    and a classifier whose logits are well above the parity tolerance."""
    randomize_bn_stats(model, affine=True)
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.BatchNorm3d) and name.endswith("bn_c"):
                m.weight.uniform_(0.05, 0.2)
        torch.nn.init.normal_(model.fc.weight, std=0.05)
    return model.eval()


# -- architecture --------------------------------------------------------------------------
def test_block_temporal_kernels_cycle_the_pattern():
    assert block_temporal_kernels(3, 3) == (3, 3, 3)
    assert block_temporal_kernels((3, 1), 6) == (3, 1, 3, 1, 3, 1)
    assert block_temporal_kernels((1, 3), 3) == (1, 3, 1)
    assert block_temporal_kernels([3, 1], 1) == (3,)


def test_temporal_kernel_pattern_per_block():
    net = zoo.build("i3d_r50", num_classes=3).backbone
    got = {name: [b.conv_a.kernel_size[0] for b in stage] for name, stage in zip(EXPECTED_KT, net.stages())}
    assert got == EXPECTED_KT
    assert net.res3[1].conv_a.kernel_size == (1, 1, 1) and net.res5[0].conv_a.kernel_size == (1, 1, 1)
    assert net.res4[4].conv_a.kernel_size == (3, 1, 1) and net.res5[1].conv_a.kernel_size == (3, 1, 1)
    for stage in net.stages():
        for block in stage:
            kt = block.conv_a.kernel_size[0]
            assert block.conv_a.padding == (kt // 2, 0, 0) and block.conv_a.stride == (1, 1, 1)
            assert block.conv_b.kernel_size == (1, 3, 3) and block.conv_b.stride[0] == 1
    assert net.stem.conv.kernel_size == (5, 7, 7) and net.stem.conv.stride == (1, 2, 2)
    assert net.stem.conv.padding == (2, 3, 3)
    assert [s[0].conv_b.stride for s in net.stages()] == [(1, 1, 1), (1, 2, 2), (1, 2, 2), (1, 2, 2)]


def test_temporal_pool_halves_time_between_res2_and_res3():
    model = zoo.build("i3d_r50", num_classes=3).eval()
    pool = model.backbone.pool
    assert (pool.kernel_size, pool.stride, pool.padding) == ((2, 1, 1), (2, 1, 1), 0)
    frames = {}
    for name in ("res2", "res3"):
        stage = getattr(model.backbone, name)
        stage.register_forward_hook(lambda m, a, out, n=name: frames.__setitem__(n, (a[0], out)))
    with torch.no_grad():
        features = model.forward_features(torch.randn(1, 3, 8, 32, 32))
        emb = model.forward_head(features, pre_logits=True)
    assert frames["res2"][0].shape[2] == frames["res2"][1].shape[2] == 8
    assert frames["res3"][0].shape[2] == 4
    assert features.shape == (1, 2048, 4, 1, 1) and emb.shape == (1, 2048) == (1, model.num_features)


def test_head_window_follows_training_clip_and_crop():
    assert zoo.build("i3d_r50", num_classes=3).pool_size == (4, 7, 7)  # PyTorchVideo head_pool_kernel_size
    assert zoo.build("i3d_r50", num_classes=3, num_frames=16, train_crop_size=64).pool_size == (8, 2, 2)
    with pytest.raises(ValueError, match="multiple of 2"):
        zoo.build("i3d_r50", num_classes=3, num_frames=7)


def test_odd_frame_count_raises():
    model = zoo.build("i3d_r50", num_classes=3).eval()
    with pytest.raises(ValueError, match=r"expects input \[B, 3, T, H, W\].* multiple of 2.*\[1, 3, 7, 32, 32\]"):
        model(torch.randn(1, 3, 7, 32, 32))


def test_pyslowfast_names_and_shapes():
    sd = to_pyslowfast_layout(zoo.build("i3d_r50").state_dict())
    assert len(sd) == 320
    expected = {
        "s1.pathway0_stem.conv.weight": (64, 3, 5, 7, 7),
        "s2.pathway0_res0.branch1.weight": (256, 64, 1, 1, 1),
        "s2.pathway0_res2.branch2.a.weight": (64, 256, 3, 1, 1),
        "s3.pathway0_res1.branch2.a.weight": (128, 512, 1, 1, 1),
        "s4.pathway0_res4.branch2.a.weight": (256, 1024, 3, 1, 1),
        "s5.pathway0_res0.branch2.a.weight": (512, 1024, 1, 1, 1),
        "s5.pathway0_res1.branch2.a.weight": (512, 2048, 3, 1, 1),
        "s5.pathway0_res0.branch1_bn.running_var": (2048,),
        "head.projection.weight": (400, 2048),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert not any("pathway1" in k or "_fuse" in k for k in sd)


def test_flops_and_params_at_the_training_crop():
    """fvcore on PyTorchVideo's i3d_r50 at 8x224x224: 28.04 M params, 28.54 GFLOPs (the registry
    test checks the 256x256 test crop, 37.28)."""
    model = zoo.build("i3d_r50")
    assert count_params(model) / 1e6 == pytest.approx(28.04, rel=0.01)
    assert count_flops(model, (1, 3, 8, 224, 224)).gflops == pytest.approx(28.54, rel=0.01)


# -- official checkpoint layouts -----------------------------------------------------------
def _outputs(model, x):
    with torch.no_grad():
        return model.eval()(x)


def test_pyslowfast_layout_round_trip():
    src = randomize(zoo.build("i3d_r50", num_classes=7))
    sd = src.state_dict()
    dst = zoo.build("i3d_r50", num_classes=7)
    pyth = {"epoch": 196, "model_state": to_pyslowfast_layout(sd), "cfg": "MODEL:\n  ARCH: i3d\n"}
    mapped = checkpoint_filter_fn(pyth, dst)
    assert set(mapped) == set(sd) and all(torch.equal(mapped[k], v) for k, v in sd.items())
    blobs = to_caffe2_layout(sd)  # PySlowFast's Caffe2 names: conv1_w, res2_0_branch2a_w, ..., pred_w
    assert {"conv1_w", "res_conv1_bn_riv", "res5_2_branch2c_bn_s", "pred_w"} <= set(blobs)
    assert not any(b.startswith("t_") for b in blobs)
    mapped = checkpoint_filter_fn({"blobs": blobs}, dst)
    assert set(mapped) == {k for k in sd if not k.endswith("num_batches_tracked")}
    assert all(torch.equal(v, sd[k]) for k, v in mapped.items())


@pytest.mark.parametrize("layout", ["pytorchvideo", "pyslowfast_copy_of_ptv", "pyslowfast", "zoo"])
def test_pyth_loads_through_build(tmp_path, layout):
    src = randomize(zoo.build("i3d_r50", num_classes=7))
    sd = src.state_dict()
    ckpt = {"pytorchvideo": lambda: {"model_state": to_pytorchvideo_layout(sd, PTV_LAYOUT)},
            "pyslowfast_copy_of_ptv": lambda: {"model_state": {"model." + k: v for k, v in
                                                               to_pytorchvideo_layout(sd, PTV_LAYOUT).items()}},
            "pyslowfast": lambda: {"model_state": to_pyslowfast_layout(sd), "epoch": 196},
            "zoo": lambda: sd}[layout]()
    if layout == "pytorchvideo":
        assert "blocks.0.conv.weight" in ckpt["model_state"] and "blocks.6.proj.weight" in ckpt["model_state"]
        assert not any(k.startswith("blocks.2.") for k in ckpt["model_state"])  # the parameter-free pool
    path = tmp_path / "I3D_8x8_R50.pyth"
    torch.save(ckpt, path)
    dst = zoo.build("i3d_r50", num_classes=7, weights=path)
    assert len(dst.load_report.loaded) == len(sd)
    x = torch.randn(1, 3, 8, 32, 32)
    assert torch.equal(_outputs(src, x), _outputs(dst, x))


def test_new_num_classes_reinitialises_only_the_classifier(tmp_path):
    src = randomize(zoo.build("i3d_r50"))
    path = tmp_path / "I3D_8x8_R50.pyth"
    torch.save({"model_state": to_pytorchvideo_layout(src.state_dict(), PTV_LAYOUT)}, path)
    dst = zoo.build("i3d_r50", num_classes=5, weights=path)
    assert sorted(dst.load_report.reinitialised) == ["fc.bias", "fc.weight"]
    assert torch.equal(dst.backbone.res5[2].conv_c.weight, src.backbone.res5[2].conv_c.weight)


# -- parity with PyTorchVideo --------------------------------------------------------------
def test_hub_model_matches_layout_key_for_key():
    hub = pytest.importorskip("pytorchvideo.models.hub")
    ptv = hub.i3d_r50(pretrained=False)
    ours = zoo.build("i3d_r50")
    assert {k: tuple(v.shape) for k, v in to_pytorchvideo_layout(ours.state_dict(), PTV_LAYOUT).items()} == \
           {k: tuple(v.shape) for k, v in ptv.state_dict().items()}
    pool = ptv.blocks[2]
    assert isinstance(pool, torch.nn.MaxPool3d) and (pool.kernel_size, pool.stride) == ((2, 1, 1), (2, 1, 1))
    assert pool.padding in (0, (0, 0, 0))
    assert ptv.blocks[6].pool.kernel_size == ours.pool_size and ptv.blocks[6].dropout.p == ours.dropout.p
    ptv_kt = {name: [b.branch2.conv_a.kernel_size[0] for b in ptv.blocks[i].res_blocks]
              for name, i in zip(EXPECTED_KT, PTV_LAYOUT.blocks[1:5])}
    assert ptv_kt == EXPECTED_KT


def test_parity_with_pytorchvideo_hub():
    """Our randomized weights in PyTorchVideo's hub i3d_r50 -> the same logits.

    A 96 px input with a 64 px "training crop" (2x2 pooling windows on the 3x3 res5 map; the hub's
    (4, 7, 7) head pool needs a 7x7 map) keeps the test fast while exercising the fully
    convolutional head."""
    hub = pytest.importorskip("pytorchvideo.models.hub")
    ours = randomize(zoo.build("i3d_r50", train_crop_size=64))
    ptv = hub.i3d_r50(pretrained=False, head_pool_kernel_size=(4, 2, 2)).eval()
    ptv.load_state_dict(to_pytorchvideo_layout(ours.state_dict(), PTV_LAYOUT), strict=True)
    # and back: PyTorchVideo's state dict through our filter gives our tensors
    mapped = checkpoint_filter_fn({"model_state": ptv.state_dict()}, ours)
    assert mapped.keys() == ours.state_dict().keys()
    assert all(torch.equal(v, ours.state_dict()[k]) for k, v in mapped.items())
    x = torch.randn(1, 3, 8, 96, 96)
    with torch.no_grad():
        want = ptv(x)
        got = ours(x)
    assert want.abs().max() > 0.1  # logits of a useful size, so 1e-4 is a real tolerance
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
