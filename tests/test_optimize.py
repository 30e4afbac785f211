"""zoo.optimize: same call signature and logits, BNs folded exactly, bf16 close."""
import shutil

import pytest
import torch
import torch.nn as nn

import zoo
from zoo.benchmark.latency import randomize_bn_stats
from zoo.inference import optimize
from zoo.inference.optimize import fold_batchnorms

ALL = zoo.list_models()


def clip(info, batch=2, size=None):
    size = size or max(info.min_size, 32)
    return torch.randn(batch, 3, info.num_frames, size, size, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("name", ALL)
def test_fp32_fast_path_keeps_logits(name):
    model = randomize_bn_stats(zoo.build(name, num_classes=5), affine=True).eval()
    x = clip(model.info)
    with torch.no_grad():
        ref = model(x)
    fast = optimize(model, example=x[:1])
    out = fast(x)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
    # plain 2D/3D BNs (not TAda2D's BN with its pooled branch, nor a BN1d on a pooled side branch)
    bns = sum(type(m) in (nn.BatchNorm2d, nn.BatchNorm3d) for m in fast.modules())
    assert fast.folded_batchnorms > 0 and bns < fast.folded_batchnorms, "most BNs should fold"
    assert fast.info.name == model.info.name


def test_all_resnet_bns_fold_and_model_is_untouched():
    model = randomize_bn_stats(zoo.build("tsm_r50", num_classes=5, backbone="resnet18"), affine=True).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = optimize(model, example=clip(model.info, 1))
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert fast.folded_batchnorms == n_bn
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    conv = fast.model.backbone.conv1
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_bf16_is_close_and_returns_float32():
    model = randomize_bn_stats(zoo.build("tsm_r50", num_classes=5, backbone="resnet18"), affine=True).eval()
    x = clip(model.info)
    with torch.no_grad():
        ref = model(x)
    out = optimize(model, torch.bfloat16, example=x[:1])(x)
    assert out.dtype == torch.float32
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()


def test_fold_is_refused_when_outputs_would_change():
    class ConvBNShared(nn.Module):
        """The conv output feeds the BN *and* is added back: folding the BN would be wrong,
        and the hook analysis must see the second reader."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)
            self.bn = nn.BatchNorm2d(3)
            self.act = nn.ReLU()

        def forward(self, x):
            y = self.conv(x)
            return self.act(y) + self.bn(y)

    model = randomize_bn_stats(ConvBNShared(), affine=True).eval()
    x = torch.randn(1, 3, 4, 4)
    folded, n = fold_batchnorms(model, x)
    assert n == 0
    torch.testing.assert_close(folded(x), model(x))


def test_optimize_rejects_training_mode_and_bad_dtype():
    model = zoo.build("tsm_r50", num_classes=5, backbone="resnet18")
    with pytest.raises(ValueError, match="eval"):
        optimize(model)
    with pytest.raises(ValueError, match="dtype"):
        optimize(model.eval(), torch.float16)


@pytest.mark.parametrize("layout", ["contiguous", "auto"])
def test_layouts_keep_logits(layout):
    model = randomize_bn_stats(zoo.build("r2plus1d_18", num_classes=5), affine=True).eval()
    model.info = model.info.replace(crop_size=32, num_frames=4)  # keep the auto-layout timing cheap
    x = clip(model.info)
    with torch.no_grad():
        ref = model(x)
    fast = optimize(model, example=x[:1], layout=layout)
    assert fast.channels_last in (True, False)
    if layout == "contiguous":
        assert not fast.channels_last
    else:  # the faster of the two interleaved timings was kept, and the compiled twin keeps it too
        ms = fast.layout_ms
        assert set(ms) == {"contiguous", "channels_last"} and all(v > 0 for v in ms.values())
        assert fast.channels_last == (ms["channels_last"] <= ms["contiguous"])
        assert fast.compiled_twin().layout_ms == ms
    torch.testing.assert_close(fast(x), ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
    with pytest.raises(ValueError, match="layout"):
        optimize(model, layout="nhwc")


def test_bf16_keeps_stride_larger_than_kernel_convs_and_linears_in_fp32():
    """oneDNN's bf16 conv corrupts memory when stride > kernel (SlowFast 4x16 laterals): such
    convs must run in fp32 under the bf16 fast path; so do the linears, whose outputs are the logits."""
    from zoo.inference.optimize import Float32Module

    model = zoo.build("slowfast_4x16_r50", num_classes=5).eval()
    bf16 = optimize(model, torch.bfloat16, example=clip(model.info, 1))
    wrapped = [n for n, m in bf16.named_modules() if isinstance(m, Float32Module)]
    convs = [n for n in wrapped if isinstance(bf16.get_submodule(n).module, nn.Conv3d)]
    assert bf16.fp32_convs == len(convs) == 4 and all("laterals" in n for n in convs)
    assert [n for n in wrapped if n not in convs] == ["model.fc"]
    fp32 = optimize(model, example=clip(model.info, 1))
    assert fp32.fp32_convs == 0 and not any(isinstance(m, Float32Module) for m in fp32.modules())
    x = clip(model.info)
    with torch.no_grad():
        ref = model(x)
    out = bf16(x)
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()
    assert (out.to(torch.bfloat16).float() != out).any()  # logits not rounded to bf16


class _TinyVideoNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv3d(3, 8, 3, padding=1, bias=False), nn.BatchNorm3d(8), nn.ReLU(),
                                  nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(8, 5))
        self.info = zoo.model_info("r2plus1d_18").replace(crop_size=16, num_frames=2)

    def forward(self, x):
        return self.body(x)


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile on CPU needs a C compiler")
@pytest.mark.parametrize("mode", [True, "auto"])
def test_compile_keeps_logits(mode):
    model = randomize_bn_stats(_TinyVideoNet(), affine=True).eval()
    x = clip(model.info)
    with torch.no_grad():
        ref = model(x)
    fast = optimize(model, compile=mode)
    assert fast.compiled is True if mode is True else fast.compiled in (True, False)
    torch.testing.assert_close(fast(x), ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
    assert "_compiled" not in dict(fast.named_modules())  # no second copy of the weights in state_dict
    with pytest.raises(ValueError, match="compile"):
        optimize(model, compile="always")


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile on CPU needs a C compiler")
def test_many_compiled_models_of_one_class_each_compile_with_their_own_weights():
    from torch._dynamo.utils import counters

    # dynamo keeps compiled graphs per code object and by default runs a 9th one eagerly
    models = [randomize_bn_stats(_TinyVideoNet(), seed=i, affine=True).eval() for i in range(10)]
    x = clip(models[0].info)
    before = counters["stats"]["unique_graphs"]
    for model in models:
        with torch.no_grad():
            ref = model(x)
        torch.testing.assert_close(optimize(model, compile=True)(x), ref, rtol=1e-4,
                                   atol=1e-4 * ref.abs().max().item())
    assert counters["stats"]["unique_graphs"] - before == len(models)


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile on CPU needs a C compiler")
def test_compiled_twin_shares_the_fast_models_weights_layout_and_dtype():
    model = randomize_bn_stats(_TinyVideoNet(), affine=True).eval()
    x = clip(model.info)
    fast = optimize(model, layout="contiguous")
    twin = fast.compiled_twin()
    assert (twin.compiled, fast.compiled) == (True, False)
    assert twin.model is fast.model and twin.channels_last is False and twin.dtype == fast.dtype
    assert twin.folded_batchnorms == fast.folded_batchnorms == 1 and twin.fp32_convs == fast.fp32_convs
    ref = fast(x)
    torch.testing.assert_close(twin(x), ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


@pytest.mark.parametrize("kernel, stride, padding, dilation, groups", [
    ((1, 3, 3), (1, 1, 1), (0, 1, 1), 1, 1),  # (2+1)D / P3D spatial
    ((1, 3, 3), (1, 2, 2), (0, 1, 1), 1, 1),  # strided spatial
    ((1, 3, 3), (1, 1, 1), (0, 2, 2), (1, 2, 2), 2),  # dilated, grouped
    ((3, 1, 1), (1, 1, 1), (1, 0, 0), 1, 1),  # temporal
    ((3, 1, 1), (2, 1, 1), (1, 0, 0), 1, 1),  # strided temporal
    ((1, 1, 1), (1, 1, 1), (0, 0, 0), 1, 1),  # pointwise
])
def test_conv3d_as_2d_is_the_same_conv(kernel, stride, padding, dilation, groups):
    from zoo.inference.optimize import Conv3dAs2d
    conv = nn.Conv3d(8, 12, kernel, stride, padding, dilation, groups).eval()
    assert Conv3dAs2d.applies_to(conv)
    as_2d = Conv3dAs2d(conv)
    x = torch.randn(2, 8, 6, 10, 9)
    for inp in (x, x.contiguous(memory_format=torch.channels_last_3d)):
        with torch.no_grad():
            torch.testing.assert_close(as_2d(inp), conv(inp), rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # a channels-last-3d input stays channels-last-3d
        assert as_2d(x.contiguous(memory_format=torch.channels_last_3d)).is_contiguous(
            memory_format=torch.channels_last_3d)
        back = as_2d.to_conv3d()
        assert (back.kernel_size, back.stride, back.padding) == (conv.kernel_size, conv.stride, conv.padding)
        torch.testing.assert_close(back(x), conv(x), rtol=1e-5, atol=1e-5)


def test_conv3d_as_2d_leaves_full_3d_and_lateral_convs():
    from zoo.inference.optimize import Conv3dAs2d
    assert not Conv3dAs2d.applies_to(nn.Conv3d(4, 4, 3, padding=1))
    assert not Conv3dAs2d.applies_to(nn.Conv3d(4, 4, (5, 1, 1), (8, 1, 1), (2, 0, 0)))  # kept in fp32 under bf16
    assert not Conv3dAs2d.applies_to(nn.Conv3d(4, 4, (1, 3, 3), (1, 1, 1), (1, 1, 1)))  # pads time
    assert not Conv3dAs2d.applies_to(nn.Conv2d(4, 4, 3))


def test_fp32_fast_path_runs_frame_and_pixel_convs_as_2d_but_not_bf16_or_compiled():
    from zoo.inference.optimize import Conv3dAs2d
    model = randomize_bn_stats(zoo.build("r2plus1d_18", num_classes=5, layers=(1, 1, 1, 1)), affine=True).eval()
    x = clip(model.info, size=32)
    fast = optimize(model, example=x[:1])
    n = sum(isinstance(m, Conv3dAs2d) for m in fast.modules())
    assert fast.convs_as_2d == n > 0
    assert optimize(model, torch.bfloat16, example=x[:1]).convs_as_2d == 0
    assert optimize(model, example=x[:1], layout="contiguous").convs_as_2d == 0
    twin = fast.compiled_twin()  # not called: only its module tree is checked here
    assert twin.convs_as_2d == 0 and not any(isinstance(m, Conv3dAs2d) for m in twin.model.modules())
    with torch.no_grad():
        ref = model(x)
    torch.testing.assert_close(twin.model(x.contiguous(memory_format=torch.channels_last_3d)), fast(x),
                               rtol=1e-4, atol=1e-4 * ref.abs().max().item())
