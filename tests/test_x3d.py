"""X3D: the expanded widths and depths, the block and head against their definitions, PySlowFast's
and PyTorchVideo's checkpoint layouts, parity with PyTorchVideo's ``create_x3d``, and PySlowFast's
FLOP convention."""
import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo._errors import BadCheckpoint
from zoo.benchmark.latency import randomize_bn_stats
from zoo.flops import count_flops
from zoo.models import load_state_dict_checked
from zoo.models.x3d import (PYSLOWFAST_CONV_GFLOPS, X3DBlock, checkpoint_filter_fn, round_width, stage_depths,
                            to_pyslowfast_layout, to_pytorchvideo_layout)

try:
    from pytorchvideo.models.x3d import create_x3d
except ImportError:  # test-only dependency
    create_x3d = None

needs_ptv = pytest.mark.skipif(create_x3d is None, reason="pytorchvideo is not installed (pip install pytorchvideo)")


def _randomised(model):
    torch.manual_seed(0)
    return randomize_bn_stats(model, affine=True).eval()


# -- architecture --------------------------------------------------------------------------
def test_expansion_widths_and_depths():
    assert stage_depths(2.2) == (3, 5, 11, 7) and stage_depths(5.0) == (5, 10, 25, 15)
    # PySlowFast round_width: SE widths of the four stages' inner channels, and the stage widths
    assert [round_width(c, 0.0625, 8, 8) for c in (54, 108, 216, 432)] == [8, 8, 16, 32]
    assert [round_width(c, 2.0, None, 8) for c in (12, 24, 48)] == [24, 48, 96]
    model = zoo.build("x3d_s", num_classes=5)
    assert model.stem.conv_xy.out_channels == 24 and model.stem.conv_t.groups == 24
    assert model.stem.conv_t.kernel_size == (5, 1, 1)
    for stage, (width, depth) in zip(model.stages(), ((24, 3), (48, 5), (96, 11), (192, 7))):
        assert len(stage) == depth
        for j, block in enumerate(stage):
            inner = int(2.25 * width)
            assert block.conv_c.out_channels == width and block.conv_b.groups == inner == block.conv_a.out_channels
            assert block.conv_b.kernel_size == (3, 3, 3)
            assert block.conv_b.stride == ((1, 2, 2) if j == 0 else (1, 1, 1))  # space only, never time
            assert (block.se is not None) == (j % 2 == 0)  # squeeze-excitation on blocks 0, 2, 4...
    assert (model.conv5.out_channels, model.lin5.out_channels, model.fc.in_features) == (432, 2048, 2048)
    assert [len(s) for s in zoo.build("x3d_l", num_classes=5).stages()] == [5, 10, 25, 15]


def test_xs_s_m_are_one_network():
    shapes = [{k: v.shape for k, v in zoo.build(n).state_dict().items()} for n in ("x3d_xs", "x3d_s", "x3d_m")]
    assert shapes[0] == shapes[1] == shapes[2]
    assert [zoo.build(n).pool_size for n in ("x3d_xs", "x3d_s", "x3d_m", "x3d_l")] == \
           [(4, 5, 5), (13, 5, 5), (16, 7, 7), (16, 10, 10)]


def test_block_is_the_definition():
    """An X3D block written out: 1x1x1, BN, ReLU; depthwise 3x3x3 (stride), BN; SE (pool, fc, ReLU,
    fc, sigmoid, scale); swish; 1x1x1, BN; plus the projected shortcut; ReLU."""
    torch.manual_seed(0)
    block = X3DBlock(8, 18, 16, stride=2, se_ratio=0.0625)
    randomize_bn_stats(block, affine=True).eval()
    for conv in (block.se.fc1, block.se.fc2):
        torch.nn.init.normal_(conv.bias, 0, 0.5)
    x = torch.randn(2, 8, 3, 9, 9)
    bn = lambda m, v: F.batch_norm(v, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)
    y = torch.relu(bn(block.bn_a, F.conv3d(x, block.conv_a.weight)))
    y = bn(block.bn_b, F.conv3d(y, block.conv_b.weight, stride=(1, 2, 2), padding=1, groups=18))
    s = torch.sigmoid(F.conv3d(torch.relu(F.conv3d(y.mean((2, 3, 4), keepdim=True), block.se.fc1.weight,
                                                   block.se.fc1.bias)), block.se.fc2.weight, block.se.fc2.bias))
    y = y * s
    y = bn(block.bn_c, F.conv3d(y * torch.sigmoid(y), block.conv_c.weight))
    shortcut = bn(block.shortcut.bn, F.conv3d(x, block.shortcut.conv.weight, stride=(1, 2, 2)))
    with torch.no_grad():
        torch.testing.assert_close(block(x), torch.relu(y + shortcut), rtol=1e-5, atol=1e-5)


def test_head_applies_lin5_to_every_window():
    """At a crop larger than the training crop, each stride-1 pooling window goes through lin5 and
    its ReLU alone; the logits are the mean of the windows' (PySlowFast's and PyTorchVideo's head)."""
    model = _randomised(zoo.build("x3d_xs", num_classes=6, train_crop_size=64, num_frames=2))  # window 2x2x2
    torch.nn.init.normal_(model.fc.weight, std=0.5)
    features = torch.randn(1, 192, 2, 3, 3)
    with torch.no_grad():
        got = model.forward_head(features)
        x = torch.relu(model.bn5(model.conv5(features)))
        logits = [model.fc(torch.relu(model.lin5(x[..., i:i + 2, j:j + 2].mean((2, 3, 4), keepdim=True))).flatten(1))
                  for i in range(2) for j in range(2)]
        torch.testing.assert_close(got, torch.stack(logits).mean(0), rtol=1e-5, atol=1e-5)
        soft = zoo.build("x3d_xs", num_classes=6, train_crop_size=64, num_frames=2, window_softmax=True).eval()
        soft.load_state_dict(model.state_dict())
        expected = torch.stack([p.softmax(-1) for p in logits]).mean(0)
        torch.testing.assert_close(soft.forward_head(features).exp(), expected, rtol=1e-5, atol=1e-6)


# -- checkpoints ---------------------------------------------------------------------------
def test_pyslowfast_names_and_shapes():
    """Key count and names of PySlowFast's X3D-S ``model_state`` (568 entries)."""
    sd = to_pyslowfast_layout(zoo.build("x3d_s").state_dict())
    assert len(sd) == 568
    expected = {
        "s1.pathway0_stem.conv_xy.weight": (24, 3, 1, 3, 3),
        "s1.pathway0_stem.conv.weight": (24, 1, 5, 1, 1),
        "s2.pathway0_res0.branch1.weight": (24, 24, 1, 1, 1),
        "s2.pathway0_res0.branch1_bn.running_var": (24,),
        "s2.pathway0_res0.branch2.b.weight": (54, 1, 3, 3, 3),
        "s2.pathway0_res0.branch2.se.fc1.weight": (8, 54, 1, 1, 1),
        "s5.pathway0_res6.branch2.se.fc2.bias": (432,),
        "s4.pathway0_res10.branch2.c_bn.weight": (96,),
        "head.conv_5.weight": (432, 192, 1, 1, 1),
        "head.lin_5.weight": (2048, 432, 1, 1, 1),
        "head.projection.weight": (400, 2048),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert "s5.pathway0_res1.branch2.se.fc1.weight" not in sd  # no SE on odd blocks


@pytest.mark.parametrize("layout", ["pyslowfast", "pytorchvideo", "pyslowfast_copy_of_ptv", "zoo"])
def test_checkpoint_round_trip(tmp_path, layout):
    ptv = layout != "pyslowfast"
    options = dict(num_classes=7, strided_shortcut_bn=not ptv or layout == "zoo")
    src = _randomised(zoo.build("x3d_xs", **options))
    sd = src.state_dict()
    ckpt = {"pyslowfast": lambda: {"epoch": 300, "model_state": to_pyslowfast_layout(sd), "cfg": "MODEL:\n"},
            "pytorchvideo": lambda: {"model_state": to_pytorchvideo_layout(sd)},
            "pyslowfast_copy_of_ptv": lambda: {"model_state": {"model." + k: v for k, v in
                                                               to_pytorchvideo_layout(sd).items()}},
            "zoo": lambda: sd}[layout]()
    path = tmp_path / "x3d.pyth"
    torch.save(ckpt, path)
    dst = zoo.build("x3d_xs", weights=path, **options).eval()
    x = torch.randn(1, 3, 4, 40, 40)
    with torch.no_grad():
        assert torch.equal(src(x), dst(x))
    assert len(dst.load_report.loaded) == len(sd)


def test_pytorchvideo_file_needs_its_option():
    sd = to_pytorchvideo_layout(zoo.build("x3d_xs", strided_shortcut_bn=False).state_dict())
    with pytest.raises(BadCheckpoint, match="strided_shortcut_bn=False"):
        checkpoint_filter_fn({"model_state": sd}, zoo.build("x3d_xs"))
    assert zoo.weights_info("x3d_s.kinetics400_pytorchvideo").model_args == {"strided_shortcut_bn": False}
    assert zoo.weights_info("x3d_s").eval_args == {"window_softmax": True}


@needs_ptv
@pytest.mark.parametrize("name,depth_factor", [("x3d_s", 2.2), ("x3d_l", 5.0)])
def test_parity_with_pytorchvideo(name, depth_factor):
    """PyTorchVideo's create_x3d (random weights, randomised BN, no softmax), its state dict loaded
    through our filter: same logits. A 64 px "training crop" and a 96 px input keep it light while
    the head sees 2x2 windows."""
    ptv = _randomised(create_x3d(input_clip_length=13, input_crop_size=64, depth_factor=depth_factor,
                                 head_activation=None))
    with torch.no_grad():
        ptv.blocks[5].proj.weight.normal_(0, 0.05)
    ours = zoo.build(name, num_frames=13, train_crop_size=64, strided_shortcut_bn=False)
    assert {k: tuple(v.shape) for k, v in to_pytorchvideo_layout(ours.state_dict()).items()} == \
           {k: tuple(v.shape) for k, v in ptv.state_dict().items()}
    load_state_dict_checked(ours, checkpoint_filter_fn({"model_state": ptv.state_dict()}, ours))
    x = torch.randn(1, 3, 13, 96, 96)
    with torch.no_grad():
        want, got = ptv(x), ours.eval()(x)
    assert want.abs().max() > 0.1
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4 * want.abs().max().item())


# -- cost ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PYSLOWFAST_CONV_GFLOPS))
def test_pyslowfast_model_zoo_flops(name):
    """PySlowFast's MODEL_ZOO GFLOPs: the convolutions alone at the training crop, one clip."""
    crop, published = PYSLOWFAST_CONV_GFLOPS[name]
    info = zoo.model_info(name)
    report = count_flops(zoo.build(name), (1, 3, info.num_frames, crop, crop))
    assert report.by_operator["conv"] / 1e9 == pytest.approx(published, rel=0.01)
