"""SlowFast: frame selection, architecture against the published layouts, the three official
checkpoint layouts, the Caffe2 pickle reader, and parity with PyTorchVideo."""
import io
import os
import pickle

import numpy as np
import pytest
import torch

import zoo
from zoo.models import load_state_dict_checked
from zoo.models._resnet3d import _c2_to_pysf
from zoo.models.slowfast import (checkpoint_filter_fn, read_caffe2_pkl, slow_indices,
                                 to_caffe2_layout, to_pyslowfast_layout, to_pytorchvideo_layout)

try:
    from pytorchvideo.models.slowfast import create_slowfast
except ImportError:  # test-only dependency
    create_slowfast = None


def randomize(model):
    """Non-trivial BN statistics and affine parameters, so any wrong key mapping changes the output."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
        for name, m in model.named_modules():  # small residual branches keep activations O(1)
            if isinstance(m, torch.nn.BatchNorm3d) and name.endswith(("bn_c", "norm_c")):
                m.weight.uniform_(0.05, 0.2)
    return model.eval()


# -- frame selection and input checks -----------------------------------------------------
def test_slow_indices_follow_pyslowfast_linspace():
    # torch.linspace(0, 31, 8) = 0, 4.43, 8.86, 13.29, 17.71, 22.14, 26.57, 31 -> truncated
    assert slow_indices(32, 4).tolist() == [0, 4, 8, 13, 17, 22, 26, 31]
    # linspace(0, 31, 4) = 0, 10.33, 20.67, 31
    assert slow_indices(32, 8).tolist() == [0, 10, 20, 31]
    assert slow_indices(8, 4).tolist() == [0, 7]


@pytest.mark.parametrize("name,frames", [("slowfast_8x8_r50", [0, 4, 8, 13, 17, 22, 26, 31]),
                                         ("slowfast_4x16_r50", [0, 10, 20, 31])])
def test_pathways_receive_the_right_frames(name, frames):
    model = zoo.build(name, num_classes=3).eval()
    seen = {}
    model.slow.stem.register_forward_pre_hook(lambda m, a: seen.__setitem__("slow", a[0]))
    model.fast.stem.register_forward_pre_hook(lambda m, a: seen.__setitem__("fast", a[0]))
    x = torch.randn(1, 3, 32, 32, 32)
    with torch.no_grad():
        model(x)
    assert torch.equal(seen["slow"], x[:, :, frames])
    assert seen["fast"] is x  # the fast pathway takes the clip itself, no copy


@pytest.mark.parametrize("name,alpha", [("slowfast_8x8_r50", 4), ("slowfast_4x16_r50", 8)])
def test_frames_not_a_multiple_of_alpha_raise(name, alpha):
    model = zoo.build(name, num_classes=3).eval()
    with pytest.raises(ValueError, match=rf"expects input \[B, 3, T, H, W\].* multiple of {alpha}.*\[1, 3, 30, 32, 32\]"):
        model(torch.randn(1, 3, 30, 32, 32))


# -- architecture --------------------------------------------------------------------------
def test_pyslowfast_names_and_shapes():
    """Key count and example shapes listed for PySlowFast's SLOWFAST_8x8_R50 model (662 entries)."""
    sd = to_pyslowfast_layout(zoo.build("slowfast_8x8_r50").state_dict())
    assert len(sd) == 662
    expected = {
        "s1.pathway0_stem.conv.weight": (64, 3, 1, 7, 7),
        "s1.pathway1_stem.conv.weight": (8, 3, 5, 7, 7),
        "s1_fuse.conv_f2s.weight": (16, 8, 7, 1, 1),
        "s4_fuse.conv_f2s.weight": (256, 128, 7, 1, 1),
        "s2.pathway0_res0.branch1.weight": (256, 80, 1, 1, 1),  # 64 + 16 lateral channels
        "s5.pathway0_res0.branch2.a.weight": (512, 1280, 3, 1, 1),  # 1024 + 256 lateral channels
        "s5.pathway1_res0.branch2.a.weight": (64, 128, 3, 1, 1),
        "s3.pathway0_res0.branch2.b.weight": (128, 128, 1, 3, 3),
        "s4.pathway1_res5.branch2.c_bn.running_var": (128,),
        "head.projection.weight": (400, 2304),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key


def test_lateral_and_stage_settings_per_variant():
    m416, m88, r101 = (zoo.build(n, num_classes=3) for n in ("slowfast_4x16_r50", "slowfast_8x8_r50",
                                                              "slowfast_8x8_r101"))
    assert all(lat.conv.kernel_size == (5, 1, 1) and lat.conv.stride == (8, 1, 1) for lat in m416.laterals)
    assert all(lat.conv.kernel_size == (7, 1, 1) and lat.conv.stride == (4, 1, 1) for lat in m88.laterals)
    assert all(lat.conv.kernel_size == (5, 1, 1) and lat.conv.stride == (4, 1, 1) for lat in r101.laterals)
    assert [len(s) for s in r101.slow.stages()] == [3, 4, 23, 3]
    for model in (m88, r101):  # temporal kernel on conv_a: slow 1,1,3,3 / fast 3,3,3,3; no temporal stride
        for path, kernels in ((model.slow, (1, 1, 3, 3)), (model.fast, (3, 3, 3, 3))):
            for stage, kt in zip(path.stages(), kernels):
                for block in stage:
                    assert block.conv_a.kernel_size == (kt, 1, 1) and block.conv_b.kernel_size == (1, 3, 3)
                    assert block.conv_a.stride[0] == block.conv_b.stride[0] == 1


def test_feature_shapes_keep_time():
    model = zoo.build("slowfast_8x8_r50", num_classes=3).eval()
    with torch.no_grad():
        slow, fast = model.forward_features(torch.randn(1, 3, 32, 32, 32))
        emb = model.forward_head((slow, fast), pre_logits=True)
    assert slow.shape == (1, 2048, 8, 1, 1) and fast.shape == (1, 256, 32, 1, 1)
    assert emb.shape == (1, 2304) == (1, model.num_features)


def test_head_projects_every_window_then_averages():
    """At test crops larger than the training crop, PySlowFast's head applies the classifier to
    every stride-1 pooling window and averages the scores (before its softmax)."""
    model = randomize(zoo.build("slowfast_4x16_r50", num_classes=6, train_crop_size=64))  # 2x2 windows
    torch.nn.init.normal_(model.fc.weight, std=1.0)
    slow = torch.randn(1, 2048, 4, 3, 3)
    fast = torch.randn(1, 256, 32, 3, 3)
    with torch.no_grad():
        got = model.forward_head((slow, fast))
        windows = []
        for i in range(2):
            for j in range(2):
                feat = torch.cat([slow[..., i:i + 2, j:j + 2].mean((2, 3, 4)), fast[..., i:i + 2, j:j + 2].mean((2, 3, 4))], 1)
                windows.append(model.fc(feat))
    torch.testing.assert_close(got, torch.stack(windows).mean(0), rtol=1e-5, atol=1e-5)


# -- official checkpoint layouts -----------------------------------------------------------
def _outputs(model, x):
    with torch.no_grad():
        return model.eval()(x)


def _pyslowfast_pyth(sd):
    return {"epoch": 196, "model_state": to_pyslowfast_layout(sd), "optimizer_state": {}, "cfg": "MODEL:\n  ARCH: slowfast\n"}


def _pytorchvideo_pyth(sd, prefix=""):
    return {"model_state": {prefix + k: v for k, v in to_pytorchvideo_layout(sd).items()}}


@pytest.mark.parametrize("name,layout", [
    ("slowfast_8x8_r50", "pyslowfast"), ("slowfast_8x8_r50", "pytorchvideo"),
    ("slowfast_8x8_r50", "pyslowfast_copy_of_ptv"), ("slowfast_8x8_r50", "zoo"),
    ("slowfast_4x16_r50", "pyslowfast"), ("slowfast_4x16_r50", "pytorchvideo"),
])
def test_pyth_round_trip(tmp_path, name, layout):
    src = randomize(zoo.build(name, num_classes=7))
    sd = src.state_dict()
    ckpt = {"pyslowfast": lambda: _pyslowfast_pyth(sd),
            "pytorchvideo": lambda: _pytorchvideo_pyth(sd),
            "pyslowfast_copy_of_ptv": lambda: _pytorchvideo_pyth(sd, prefix="model."),
            "zoo": lambda: sd}[layout]()
    path = tmp_path / "ckpt.pyth"
    torch.save(ckpt, path)
    dst = zoo.build(name, num_classes=7, weights=path)
    x = torch.randn(1, 3, 8, 32, 32)  # any multiple of alpha: keeps the test light
    assert torch.equal(_outputs(src, x), _outputs(dst, x))
    assert len(dst.load_report.loaded) == len(sd)


def _py2_style_pickle(obj) -> bytes:
    """Pickle numpy arrays the way Python 2 / numpy 1 wrote them: ``numpy.core.multiarray``
    globals and the array bytes as a (latin1) string payload."""
    from numpy._core.multiarray import _reconstruct

    class Py2Pickler(pickle.Pickler):
        def reducer_override(self, o):
            if isinstance(o, np.ndarray):
                return (_reconstruct, (np.ndarray, (0,), "b"),
                        (1, o.shape, o.dtype, False, o.tobytes().decode("latin1")))
            return NotImplemented

    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    data = buf.getvalue()
    assert b"numpy._core.multiarray\n_reconstruct" in data
    return data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def _caffe2_pkl(model, depth):
    blobs = to_caffe2_layout(model.state_dict(), depth=depth)
    # Caffe2 pickles also hold optimiser state, which the filter must skip.
    blobs["res2_0_branch2a_w_momentum"] = np.zeros_like(blobs["res2_0_branch2a_w"])
    blobs["lr"] = np.array([0.1], dtype=np.float32)
    blobs["model_iter"] = np.array([1000], dtype=np.int64)
    blobs["pred_w"] = blobs["pred_w"].astype(np.float32)  # not a view of the torch tensor
    return _py2_style_pickle({"blobs": blobs})


@pytest.mark.parametrize("name", ["slowfast_8x8_r50", "slowfast_4x16_r50"])
def test_caffe2_pkl_round_trip(tmp_path, name):
    src = randomize(zoo.build(name, num_classes=7))
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(_caffe2_pkl(src, 50))
    dst = zoo.build(name, num_classes=7)
    report = load_state_dict_checked(dst, checkpoint_filter_fn(read_caffe2_pkl(path), dst))
    assert len(report.filled) == sum(k.endswith("num_batches_tracked") for k in dst.state_dict())
    x = torch.randn(1, 3, 8, 32, 32)
    assert torch.equal(_outputs(src, x), _outputs(dst, x))


def test_caffe2_blobs_of_r101():
    """R101's laterals are named after the last block of each stage (``t_res4_22_...``)."""
    src = zoo.build("slowfast_8x8_r101", num_classes=7)
    sd = src.state_dict()
    blobs = to_caffe2_layout(sd, depth=101)
    assert {"t_res2_2_branch2c_bn_subsample_w", "t_res3_3_branch2c_bn_subsample_w",
            "t_res4_22_branch2c_bn_subsample_w", "res4_22_branch2c_w"} <= set(blobs)
    mapped = checkpoint_filter_fn({"blobs": blobs}, src)
    assert set(mapped) == {k for k in sd if not k.endswith("num_batches_tracked")}
    assert all(torch.equal(v, sd[k]) for k, v in mapped.items())


def test_caffe2_pkl_through_build(tmp_path):
    src = randomize(zoo.build("slowfast_8x8_r50", num_classes=7))
    path = tmp_path / "SLOWFAST_8x8_R50.pkl"
    path.write_bytes(_caffe2_pkl(src, 50))
    dst = zoo.build("slowfast_8x8_r50", num_classes=5, weights=path)  # new classifier, rest loaded
    assert sorted(dst.load_report.reinitialised) == ["fc.bias", "fc.weight"]
    torch.testing.assert_close(dst.slow.res5[2].conv_c.weight, src.slow.res5[2].conv_c.weight, rtol=0, atol=0)


def test_caffe2_names_match_pyslowfast_converter():
    """Blob names documented for PySlowFast's Caffe2 converter, both directions."""
    documented = {
        "conv1_w": "s1.pathway0_stem.conv.weight",
        "t_conv1_w": "s1.pathway1_stem.conv.weight",
        "res_conv1_bn_riv": "s1.pathway0_stem.bn.running_var",
        "t_res_conv1_bn_s": "s1.pathway1_stem.bn.weight",
        "res2_0_branch1_w": "s2.pathway0_res0.branch1.weight",
        "res2_0_branch1_bn_s": "s2.pathway0_res0.branch1_bn.weight",
        "res3_1_branch2b_w": "s3.pathway0_res1.branch2.b.weight",
        "t_res4_5_branch2c_bn_riv": "s4.pathway1_res5.branch2.c_bn.running_var",
        "t_pool1_subsample_w": "s1_fuse.conv_f2s.weight",
        "t_pool1_subsample_bn_s": "s1_fuse.bn.weight",
        "t_res2_2_branch2c_bn_subsample_w": "s2_fuse.conv_f2s.weight",
        "t_res2_2_branch2c_bn_subsample_bn_rm": "s2_fuse.bn.running_mean",
        "t_res4_5_branch2c_bn_subsample_bn_b": "s4_fuse.bn.bias",
        "pred_w": "head.projection.weight",
        "pred_b": "head.projection.bias",
    }
    for blob, key in documented.items():
        assert _c2_to_pysf(blob) == key, blob
    sd = zoo.build("slowfast_8x8_r50").state_dict()
    blobs = to_caffe2_layout(sd)
    assert set(documented) <= set(blobs)
    assert len(blobs) == len(sd) - sum(k.endswith("num_batches_tracked") for k in sd)  # Caffe2 has no step counters
    assert _c2_to_pysf("res2_0_branch2a_w_momentum") is None and _c2_to_pysf("lr") is None


# -- the restricted Caffe2 reader ----------------------------------------------------------
class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("payload", [_Evil(), {"blobs": {"x": _Evil()}}, torch.nn.Linear(2, 2)])
def test_caffe2_reader_refuses_anything_but_arrays(tmp_path, payload):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        read_caffe2_pkl(path)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_caffe2_reader_reads_numpy_pickles(protocol):
    blobs = {"conv1_w": np.random.rand(2, 3, 1, 7, 7).astype(np.float32), "lr": np.float32(0.1),
             "model_iter": np.arange(3)}
    out = read_caffe2_pkl(io.BytesIO(pickle.dumps({"blobs": blobs}, protocol=protocol)))
    for k, v in blobs.items():
        assert np.array_equal(out["blobs"][k], v) and out["blobs"][k].dtype == np.asarray(v).dtype


def test_caffe2_reader_reads_python2_latin1_pickles():
    arr = np.arange(256, dtype=np.uint8).reshape(16, 16)  # every byte value survives latin1
    weights = np.random.rand(4, 5).astype(np.float32)
    out = read_caffe2_pkl(io.BytesIO(_py2_style_pickle({"blobs": {"a": arr, "w": weights}})))
    assert np.array_equal(out["blobs"]["a"], arr) and np.array_equal(out["blobs"]["w"], weights)


# -- parity with PyTorchVideo --------------------------------------------------------------
@pytest.mark.skipif(create_slowfast is None, reason="pytorchvideo is not installed (pip install pytorchvideo)")
@pytest.mark.parametrize("name,ptv_args", [
    ("slowfast_8x8_r50", dict(slowfast_fusion_conv_kernel_size=(7, 1, 1), slowfast_fusion_conv_stride=(4, 1, 1),
                              head_pool_kernel_sizes=((8, 2, 2), (32, 2, 2)))),
    ("slowfast_4x16_r50", dict(slowfast_fusion_conv_kernel_size=(5, 1, 1), slowfast_fusion_conv_stride=(8, 1, 1),
                               head_pool_kernel_sizes=((4, 2, 2), (32, 2, 2)))),
])
def test_parity_with_pytorchvideo(name, ptv_args):
    """Real R50 SlowFast, PyTorchVideo's weights loaded through our filter -> same logits.

    A 96 px input with a 64 px "training crop" (2x2 pooling windows on the 3x3 res5 map) keeps
    the test fast while exercising the fully convolutional head."""
    ptv = randomize(create_slowfast(model_depth=50, model_num_class=400, **ptv_args))
    ours = zoo.build(name, train_crop_size=64)
    ptv_sd = ptv.state_dict()
    # our PyTorchVideo naming reproduces the reference's key set and shapes exactly
    assert {k: tuple(v.shape) for k, v in to_pytorchvideo_layout(ours.state_dict()).items()} == \
           {k: tuple(v.shape) for k, v in ptv_sd.items()}
    load_state_dict_checked(ours, checkpoint_filter_fn({"model_state": ptv_sd}, ours))
    ours.eval()
    x = torch.randn(1, 3, 32, 96, 96)
    idx = torch.linspace(0, 31, 32 // ours.alpha).long()  # PyTorchVideo's PackPathway
    with torch.no_grad():
        want = ptv([x.index_select(2, idx), x])
        got = ours(x)
    assert want.abs().max() > 0.1  # logits of a useful size, so 1e-4 is a real tolerance
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)


@pytest.mark.skipif(create_slowfast is None, reason="pytorchvideo is not installed (pip install pytorchvideo)")
def test_r101_keys_match_pytorchvideo_hub():
    from pytorchvideo.models.hub import slowfast_r101

    ptv = slowfast_r101(pretrained=False)
    ours = zoo.build("slowfast_8x8_r101")
    assert {k: tuple(v.shape) for k, v in to_pytorchvideo_layout(ours.state_dict()).items()} == \
           {k: tuple(v.shape) for k, v in ptv.state_dict().items()}
    assert ptv.blocks[0].multipathway_fusion.conv_fast_to_slow.kernel_size == ours.laterals[0].conv.kernel_size


@pytest.mark.parametrize("name", ["slowfast_4x16_r50", "i3d_r50"])
def test_window_softmax_is_pyslowfasts_test_head(name):
    """At the training crop one window: log_softmax of the logits. At a larger crop (64 px for a
    32-px-trained head: 2x2 windows) the mean of the per-window softmax, computed by hand."""
    import torch.nn.functional as F

    args = dict(num_classes=5, depth=26, train_crop_size=32)
    model = randomize(zoo.build(name, **args))
    soft = zoo.build(name, window_softmax=True, **args)
    soft.load_state_dict(model.state_dict())
    soft.eval()
    small, large = torch.randn(1, 3, 8, 32, 32), torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(soft(small), model(small).log_softmax(-1), rtol=1e-5, atol=1e-6)
        feats = model.forward_features(large)
        feats = list(feats) if isinstance(feats, tuple) else [feats]
        sizes = model.pool_sizes if hasattr(model, "pool_sizes") else [model.pool_size]
        clipped = [tuple(min(k, d) for k, d in zip(s, f.shape[2:])) for f, s in zip(feats, sizes)]
        windows = torch.cat([F.avg_pool3d(f, k, stride=1) for f, k in zip(feats, clipped)], 1)  # [1, C, 1, 2, 2]
        assert windows.shape[2:] == (1, 2, 2)
        per_window = [model.fc(windows[:, :, 0, i, j]).softmax(-1) for i in range(2) for j in range(2)]
        expected = torch.stack(per_window).mean(0)
        torch.testing.assert_close(soft(large).softmax(-1), expected, rtol=1e-5, atol=1e-6)
        assert (model(large).softmax(-1) - expected).abs().max() > 1e-6  # logits averaged first differ
    soft.train()
    assert soft(torch.randn(2, 3, 8, 32, 32)).shape == (2, 5)  # training: logits, as always
    assert zoo.weights_info("slowfast_8x8_r50").eval_args == {"window_softmax": True}
