"""STM (implemented from the paper): an STM block against a direct transcription of the paper's
equations (the channel-wise temporal fusion over each pixel's frame sequence, the 3x3 conv; the
channel-wise motion of frame t + 1 against frame t, zero for the last frame), the temporal kernels'
shift start, downsampling blocks at odd map sizes, ImageNet initialisation, any segment count."""
import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.benchmark.latency import randomize_bn_stats
from zoo.models.stm import CMM, CSTM


def _randomised(model):
    """Random temporal kernels (not the shift start) and random BN statistics and affine terms."""
    torch.manual_seed(1)
    for module in model.modules():
        if isinstance(module, CSTM):
            module.temporal.conv.weight.data.normal_()
    return randomize_bn_stats(model, affine=True).eval()


def _paper_block(block, x, frames):
    """One STM bottleneck written out as the paper describes it, frame by frame and pixel by pixel."""
    relu = torch.relu
    bn = lambda m, v: F.batch_norm(v, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)
    f = relu(bn(block.bn1, F.conv2d(x, block.conv1.weight)))  # the 1x1 reduction: [N*T, C, H, W]
    nt, c, h, w = f.shape
    # CSTM: F [N, T, C, H, W] -> F* [N*H*W, C, T], a channel-wise 1D conv over T, back, then the 3x3 conv
    seq = f.view(nt // frames, frames, c, h, w).permute(0, 3, 4, 2, 1).reshape(-1, c, frames)
    g = F.conv1d(seq, block.conv2.temporal.conv.weight, padding=1, groups=c)
    g = g.view(nt // frames, h, w, c, frames).permute(0, 4, 3, 1, 2).reshape(nt, c, h, w)
    cstm = relu(bn(block.bn2, F.conv2d(g, block.conv2.weight, stride=block.conv2.stride, padding=1)))
    # CMM: reduce 16x; H_t = K * F_{t+1} - F_t (channel-wise 3x3 conv), H_T = 0; back to C channels
    cmm = block.beside_conv2
    r = bn(cmm.bn, F.conv2d(f, cmm.reduce.weight)).view(nt // frames, frames, -1, h, w)
    motion = torch.zeros_like(r)
    for t in range(frames - 1):
        motion[:, t] = F.conv2d(r[:, t + 1], cmm.motion.weight, padding=1, groups=r.shape[2]) - r[:, t]
    m = F.conv2d(motion.flatten(0, 1), cmm.expand.weight)
    if block.conv2.stride[0] == 2:
        m = F.max_pool2d(m, 2, ceil_mode=True)
    out = bn(block.bn3, F.conv2d(cstm + m, block.conv3.weight))
    shortcut = x if block.downsample is None else block.downsample(x)
    return relu(out + shortcut)


@pytest.mark.parametrize("index, size", [(0, 8), (1, 7)])  # a downsampling block; a later one at an odd size
def test_stm_block_is_the_papers(index, size):
    model = _randomised(zoo.build("stm_r50", num_classes=5, num_segments=4))
    block = model.backbone.layer2[index]
    channels = block.conv1.in_channels
    x = torch.randn(8, channels, size, size)
    with torch.no_grad():
        torch.testing.assert_close(block(x), _paper_block(block, x, 4), rtol=1e-5, atol=1e-5)


def test_temporal_kernels_start_as_a_quarter_shift():
    conv = torch.nn.Conv2d(8, 8, 3, padding=1, bias=False)
    cstm = CSTM(conv, num_segments=3)
    x = torch.randn(6, 8, 4, 4)  # 2 clips of 3 frames
    clips = x.view(2, 3, 8, 4, 4)
    shifted = clips.clone()
    shifted[:, :, :2] = F.pad(clips[:, :-1, :2], (0, 0, 0, 0, 0, 0, 1, 0))  # first quarter: the previous frame
    shifted[:, :, 6:] = F.pad(clips[:, 1:, 6:], (0, 0, 0, 0, 0, 0, 0, 1))  # last quarter: the next frame
    with torch.no_grad():
        torch.testing.assert_close(cstm(x), conv(shifted.view(6, 8, 4, 4)), rtol=0, atol=1e-6)
    assert cstm.weight is conv.weight  # the 3x3 kernel keeps its key: ImageNet loads into it


def test_motion_module_reads_the_next_frame_and_follows_the_stride():
    torch.manual_seed(0)
    cmm = CMM(32, num_segments=4).eval()
    x = torch.randn(8, 32, 5, 5)
    changed = x.clone()
    changed[2] += 1  # clip 0, frame 2
    with torch.no_grad():
        a, b = cmm(x), cmm(changed)
        moved = [not torch.allclose(a[t], b[t]) for t in range(8)]
        assert moved == [False, True, True] + [False] * 5  # frames 1 (its next changed) and 2; clip 1 untouched
        assert not a.view(2, 4, 32, 5, 5)[:, -1].any()  # the last frame's motion is zero
        assert CMM(32, 4, stride=2)(x).shape == (8, 32, 3, 3)  # as a 3x3 conv of stride 2 at 5 px
    with pytest.raises(zoo.ZooError, match="at least 2"):
        CMM(32, num_segments=1)


def test_imagenet_resnet_initialises_the_trunk():
    import torchvision

    from zoo.models.stm import checkpoint_filter_fn

    resnet = torchvision.models.resnet50()
    model = zoo.build("stm_r50", num_classes=1000)
    start = model.backbone.layer3[2].conv2.temporal.conv.weight.clone()
    model.load_state_dict(checkpoint_filter_fn(resnet.state_dict(), model))
    assert torch.equal(model.backbone.layer3[2].conv2.weight, resnet.layer3[2].conv2.weight)
    assert torch.equal(model.fc.weight, resnet.fc.weight)
    assert torch.equal(model.backbone.layer3[2].conv2.temporal.conv.weight, start)


def test_any_segment_count_and_clear_errors():
    model = zoo.build("stm_r50", num_classes=3, num_segments=5, backbone="resnet18").eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 5, 32, 32)).shape == (2, 3)
    with pytest.raises(zoo.ZooError, match=r"\[B, 3, 5, H, W\]"):
        model(torch.randn(1, 3, 4, 32, 32))
    with pytest.raises(zoo.ZooError, match="timm ResNet"):
        zoo.build("stm_r50", backbone="res2net50_26w_4s")
    info = zoo.model_info("stm_r50")
    assert "Implemented from the paper" in info.notes and info.sampling == "segment"
