"""zoo.inference.winograd: the F(4x4, 3x3) transforms are exact, WinogradConv equals the direct conv, and
zoo.optimize uses it only where it applies."""
import shutil

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.inference import optimize
from zoo.inference.winograd import WinogradConv, transform_matrices, winograd_unavailable_reason

pytestmark = pytest.mark.skipif(winograd_unavailable_reason() is not None,
                                reason=f"no Winograd kernels: {winograd_unavailable_reason()}")


def test_transforms_compute_the_correlation_exactly():
    at, g, bt = transform_matrices()
    assert at.shape == (4, 6) and g.shape == (6, 3) and bt.shape == (6, 6)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        d = torch.randn(6, 6, dtype=torch.float64, generator=gen)
        w = torch.randn(3, 3, dtype=torch.float64, generator=gen)
        y = at @ ((g @ w @ g.T) * (bt @ d @ bt.T)) @ at.T  # 2D: the 1D transforms on both axes
        direct = torch.stack([torch.stack([(d[i:i + 3, j:j + 3] * w).sum() for j in range(4)]) for i in range(4)])
        torch.testing.assert_close(y, direct, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch, c_in, c_out, h, w, padding, bias", [
    (8, 64, 64, 14, 14, 1, True),  # ResNet shapes: tiles cover the map exactly / with overhang
    (2, 48, 40, 15, 13, 1, True),  # channels not a multiple of 16, odd sides
    (3, 35, 33, 9, 11, 0, False),  # no padding, no bias
    (16, 32, 96, 4, 4, 1, True),  # one tile per image (a batch of 16 reaches MIN_TILES)
])
def test_conv2d_equals_the_direct_conv(batch, c_in, c_out, h, w, padding, bias):
    conv = nn.Conv2d(c_in, c_out, 3, padding=padding, bias=bias)
    x = torch.randn(batch, c_in, h, w).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        y = WinogradConv(conv)(x)
    ref = F.conv2d(x.double(), conv.weight.double(), None if conv.bias is None else conv.bias.double(),
                   padding=padding)
    assert y.shape == ref.shape and y.dtype == torch.float32
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert (y.double() - ref).abs().max() <= WinogradConv.rtol * ref.abs().max()


def test_conv3d_spatial_kernel_runs_frames_as_batch():
    conv = nn.Conv3d(64, 48, (1, 3, 3), padding=(0, 1, 1))
    x = torch.randn(2, 64, 5, 10, 9).contiguous(memory_format=torch.channels_last_3d)
    with torch.inference_mode():
        y, ref = WinogradConv(conv)(x), conv(x)
    assert y.shape == ref.shape and y.is_contiguous(memory_format=torch.channels_last_3d)
    assert (y - ref).abs().max() <= WinogradConv.rtol * ref.abs().max()
    with torch.inference_mode():  # a default-layout input gives the same result
        torch.testing.assert_close(WinogradConv(conv)(x.contiguous()), y)


@pytest.mark.parametrize("shape", [(1, 64, 7, 7), (1, 64, 2, 7, 7)])
def test_few_tiles_run_the_direct_conv(shape):
    conv = (nn.Conv2d if len(shape) == 4 else nn.Conv3d)(64, 32, (3, 3) if len(shape) == 4 else (1, 3, 3),
                                                         padding=1 if len(shape) == 4 else (0, 1, 1))
    fmt = torch.channels_last if len(shape) == 4 else torch.channels_last_3d
    x = torch.randn(*shape).contiguous(memory_format=fmt)
    with torch.inference_mode():
        y, ref = WinogradConv(conv)(x), conv(x)
    assert y.shape == ref.shape and y.is_contiguous(memory_format=fmt)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)  # the direct conv's own rounding, not Winograd's


class _OwnForward(nn.Conv2d):
    def forward(self, x):
        return super().forward(x.flip(-1))


@pytest.mark.parametrize("conv, applies", [
    (nn.Conv2d(64, 64, 3, padding=1), True),
    (nn.Conv3d(64, 64, (1, 3, 3), padding=(0, 1, 1)), True),
    (nn.Conv2d(64, 64, 3, stride=2, padding=1), False),
    (nn.Conv2d(64, 64, 1), False),
    (nn.Conv2d(64, 64, 3, padding=2, dilation=2), False),
    (nn.Conv2d(64, 64, 3, padding=1, groups=2), False),
    (nn.Conv2d(16, 64, 3, padding=1), False),  # too thin to pay for the transforms
    (nn.Conv3d(64, 64, 3, padding=1), False),
    (_OwnForward(64, 64, 3, padding=1), False),  # a subclass with its own forward
])
def test_applies_only_to_stride_1_3x3_convs(conv, applies):
    assert WinogradConv.applies_to(conv) is applies
    if not applies:
        with pytest.raises(ValueError, match="3x3, stride-1"):
            WinogradConv(conv)


def test_wrong_input_names_the_expected_shape():
    conv = WinogradConv(nn.Conv2d(64, 32, 3, padding=1))
    with pytest.raises(ValueError, match=r"float32 input \[N, 64, H, W\]"):
        conv(torch.randn(1, 32, 8, 8))
    with torch.enable_grad():  # inference only: runs, but backward through it is refused
        y = conv(torch.randn(1, 64, 16, 16, requires_grad=True))  # 16 tiles: the Winograd path
        with pytest.raises(RuntimeError, match="winograd_conv.*no autograd formula"):
            y.sum().backward()


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv3d(3, 64, (1, 3, 3), padding=(0, 1, 1))
        self.bn = nn.BatchNorm3d(64)
        self.spatial = nn.Conv3d(64, 64, (1, 3, 3), padding=(0, 1, 1))
        self.temporal = nn.Conv3d(64, 64, (3, 1, 1), padding=(1, 0, 0))
        self.fc = nn.Linear(64, 7)

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        x = x + torch.relu(self.temporal(torch.relu(self.spatial(x))))
        return self.fc(x.mean((2, 3, 4)))


def _net():
    net = _Net().eval()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
    return net


def test_optimize_uses_it_in_fp32_channels_last_only():
    net, x = _net(), torch.randn(2, 3, 4, 12, 12)
    with torch.no_grad():
        ref = net(x)
    fast = optimize(net, example=x[:1])
    assert fast.winograd_convs == 1  # `spatial`; the stem has 3 input channels
    torch.testing.assert_close(fast(x), ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
    assert optimize(net, example=x[:1], winograd=False).winograd_convs == 0
    assert optimize(net, torch.bfloat16, example=x[:1]).winograd_convs == 0
    assert optimize(net, example=x[:1], layout="contiguous").winograd_convs == 0


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile on CPU needs a C compiler")
def test_compiled_model_calls_it_as_a_custom_op():
    net, x = _net(), torch.randn(2, 3, 4, 12, 12)
    with torch.no_grad():
        ref = net(x)
    fast = optimize(net, example=x[:1], compile=True)
    assert fast.compiled and fast.winograd_convs == 1
    torch.testing.assert_close(fast(x), ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
