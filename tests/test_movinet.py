"""MoViNet: TensorFlow's padding and pooling conventions, the stream form frame by frame against the
causal model on whole clips, causality, the official checkpoint names, and the architectures' sizes.

Parity with the official TensorFlow code needs TensorFlow and runs outside the suite (the model
card's notes give the figures); what it established is pinned here: `to_tf_layout` gives exactly the
names and shapes ``tf.train.list_variables`` lists for the official models (checked there for every
architecture, base and stream), and the parameter counts below are the official models'."""
import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo._errors import BadCheckpoint, UsageError
from zoo.benchmark.latency import randomize_bn_stats
from zoo.models.movinet import (ARCHS, ConvBNAct, _tf_avg_pool, checkpoint_filter_fn, tf_same_pads, to_tf_layout)


def _randomised(name, **kwargs):
    """Random BN and, unlike a fresh model, non-zero ReZero scalars and position-code scales (zero at
    init, they would hide every block's residual branch)."""
    torch.manual_seed(0)
    model = zoo.build(name, **kwargs)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 0:
                p.uniform_(0.3, 1.0)
    return randomize_bn_stats(model, affine=True).eval()


# -- TensorFlow's conventions --------------------------------------------------------------
def test_same_padding_puts_the_odd_pixel_after():
    assert tf_same_pads(172, 3, 2) == (0, 1) and tf_same_pads(171, 3, 2) == (1, 1)
    assert tf_same_pads(66, 5, 2) == (1, 2) and tf_same_pads(65, 5, 2) == (2, 2)
    assert tf_same_pads(10, 5, 1) == (2, 2) and tf_same_pads(10, 1, 1) == (0, 0)
    torch.manual_seed(0)
    block = ConvBNAct(2, 3, (1, 3, 3), stride=2).eval()
    x = torch.randn(1, 2, 2, 8, 6)
    want = block.bn(F.conv3d(F.pad(x, (0, 1, 0, 1)), block.conv.weight, stride=(1, 2, 2)))  # nothing before, one after
    torch.testing.assert_close(block(x), want)


def test_average_pool_leaves_padding_out_of_the_count():
    x = torch.rand(1, 1, 1, 4, 4)
    got = _tf_avg_pool(x)
    assert got.shape[-2:] == (2, 2)
    assert torch.allclose(_tf_avg_pool(torch.ones(1, 1, 1, 4, 4)), torch.ones(1, 1, 1, 2, 2))
    # the last window of each row and column overhangs by one: it averages 2x3, 3x2 and 2x2 real pixels
    assert torch.allclose(got[0, 0, 0, 0, 1], x[0, 0, 0, 0:3, 2:4].mean())
    assert torch.allclose(got[0, 0, 0, 1, 1], x[0, 0, 0, 2:4, 2:4].mean())


def test_hard_sigmoid_is_the_official_constant():
    gate = zoo.build("movinet_a0_stream").blocks[0].se.gate
    from zoo.models.movinet import ACTIVATIONS

    assert gate == "hard_sigmoid"
    x = torch.tensor([-4.0, 0.0, 1.0, 4.0])
    torch.testing.assert_close(ACTIVATIONS[gate](x), torch.tensor([0.0, 0.5, 4 * 0.16667, 1.00002]))


# -- the stream form -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["movinet_a0_stream", "movinet_a3_stream"])  # A3: with the position code
def test_streaming_frames_equals_the_clip_so_far(name):
    model = _randomised(name)
    x = torch.rand(1, 3, 6, 40, 36)
    with torch.no_grad():
        clips = [model(x[:, :, :t + 1]) for t in range(6)]
    with model.stream() as stream:
        frames = [stream(x[:, :, t]) for t in range(6)]
    for t, (a, b) in enumerate(zip(frames, clips)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * b.abs().max().item(), msg=f"frame {t}")
    with torch.no_grad():  # chunks of several frames carry the same state
        first, state = model.forward_stream(x[:, :, :2])
        last, state = model.forward_stream(x[:, :, 2:], state)
    torch.testing.assert_close(last, clips[-1], rtol=1e-5, atol=1e-5 * clips[-1].abs().max().item())
    assert state["frames"].item() == 6


def test_stream_form_is_causal_and_base_form_is_not():
    x = torch.rand(1, 3, 5, 40, 40)
    later = x.clone()
    later[:, :, 3:] = torch.rand(1, 3, 2, 40, 40)
    for name, causal in (("movinet_a0_stream", True), ("movinet_a0", False)):
        model = _randomised(name)
        with torch.no_grad():
            a = model.forward_features(x)[:, :, :3]
            b = model.forward_features(later)[:, :, :3]
        assert torch.equal(a, b) == causal, name


def test_state_and_misuse():
    model = _randomised("movinet_a0_stream")
    state = model.initial_state(2, 40, 36)
    assert state["frames"].shape == (1,) and state["head.pool"].shape == (2, 480, 1, 1, 1)
    assert state["block0.pool"].shape == (2, 24, 1, 1, 1) and "block0.past" not in state  # a 1x5x5 block
    # a strided 3x3x3 block: the last 2 inputs of its temporal conv, after its spatial conv's stride (10x9 -> 5x5)
    assert state["block1.past"].shape == (2, 80, 2, 5, 5)
    with pytest.raises(UsageError, match="base form"):
        zoo.build("movinet_a0").forward_stream(torch.rand(1, 3, 1, 32, 32))
    with pytest.raises(UsageError, match="eval"):
        zoo.build("movinet_a0_stream").stream()
    with pytest.raises(UsageError, match="one frame"):
        model.stream()(torch.rand(1, 3, 2, 32, 32))
    assert model.online and not zoo.build("movinet_a0").online


# -- architecture and checkpoints ----------------------------------------------------------
# trainable parameters of the official Keras models with 600 classes (model.trainable_variables)
OFFICIAL_PARAMS = {"a0": (3.111799, 3.748031), "a1": (4.690296, 6.447352), "a2": (5.249562, 7.326962),
                   "a3": (7.397545, 10.986618), "a4": (11.349463, 18.136182), "a5": (18.650523, 31.495934)}


@pytest.mark.parametrize("arch", sorted(OFFICIAL_PARAMS))
def test_parameters_match_the_official_models(arch):
    for form, expected in zip(("", "_stream"), OFFICIAL_PARAMS[arch]):
        model = zoo.build(f"movinet_{arch}{form}")
        assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(expected, abs=1e-6)


def test_official_names_examples():
    """Names and shapes as ``tf.train.list_variables`` lists the official A0 (base) and A3 (stream)."""
    base = zoo.build("movinet_a0")
    names = {k: tuple(v.shape) for k, v in to_tf_layout(base.state_dict(), base).items()}
    assert len(names) == 334
    pre, suffix = "model/layer_with_weights-0/layer_with_weights-", "/.ATTRIBUTES/VARIABLE_VALUE"
    assert names[f"{pre}0/_stem/_conv/kernel{suffix}"] == (1, 3, 3, 3, 8)
    assert names[f"{pre}1/_feature/_conv/kernel{suffix}"] == (1, 5, 5, 1, 24)
    assert names[f"{pre}10/_attention/_se_reduce/_conv/kernel{suffix}"] == (1, 1, 1, 184, 48)
    assert names[f"{pre}1/_mobile_bottleneck/_rezero/scale{suffix}"] == ()
    assert names[f"model/layer_with_weights-1/_classifier/_conv/kernel{suffix}"] == (1, 1, 1, 2048, 600)
    stream = zoo.build("movinet_a3_stream")
    names = {k: tuple(v.shape) for k, v in to_tf_layout(stream.state_dict(), stream).items()}
    assert len(names) == 847
    assert names[f"{pre}0/_stem/_conv/_conv/kernel{suffix}"] == (3, 3, 3, 16)
    assert names[f"{pre}5/_feature/_conv/_conv/depthwise_kernel{suffix}"] == (3, 3, 112, 1)
    assert names[f"{pre}5/_feature/_conv_temporal/_conv/depthwise_kernel{suffix}"] == (3, 1, 112, 1)
    assert names[f"{pre}5/_attention/_se_reduce/_conv/_conv/kernel{suffix}"] == (1, 1, 224, 56)
    assert names[f"{pre}5/_attention/_pos_encoding/_rezero/scale{suffix}"] == ()
    assert names[f"{pre}5/_feature/_batch_norm_temporal/moving_variance{suffix}"] == (112,)


@pytest.mark.parametrize("name", ["movinet_a0", "movinet_a0_stream"])
def test_official_checkpoint_through_build(tmp_path, name):
    """A checkpoint of official names (as `read_tf_checkpoint` returns it, saved as a torch file)
    loads through `zoo.build(weights=...)` into the same function."""
    src = _randomised(name)
    path = tmp_path / "movinet_tf_names.pt"
    torch.save({**to_tf_layout(src.state_dict(), src), "save_counter/.ATTRIBUTES/VARIABLE_VALUE": torch.tensor(3)},
               path)
    dst = zoo.build(name, weights=path).eval()
    x = torch.rand(1, 3, 3, 40, 40)
    with torch.no_grad():
        assert torch.equal(src(x), dst(x))
    mapped = checkpoint_filter_fn(torch.load(path, weights_only=True), dst)
    assert "save_counter/.ATTRIBUTES/VARIABLE_VALUE" not in mapped


# -- the PyTorch port's files ---------------------------------------------------------------
def port_layout(model):
    """Our state dict as the PyTorch port (Atze00/MoViNet-pytorch, `movinets/models.py`) names and
    shapes it: blocks.b<stage>_l<layer>, each conv a ConvBlock3D of conv_1 (conv3d, or per frame conv2d,
    and its BN "norm") and the stream form's temporal conv_2 (a conv2d over time x pixels)."""
    stages = ARCHS[model.arch][1]
    where = [(i, j) for i, (_, blocks) in enumerate(stages) for j in range(len(blocks))]
    conv = "conv2d" if model.causal else "conv3d"
    sub = {"conv": f"conv_1.{conv}", "bn": "conv_1.norm", "conv_temporal": "conv_2.conv2d", "bn_temporal": "conv_2.norm"}
    out = {}
    for key, value in model.state_dict().items():
        parts = key.split(".")
        if parts[0] == "blocks":
            n, rest = int(parts[1]), parts[2:]
            if rest[0] == "se":
                rest = ["se", {"reduce": "fc1", "expand": "fc2"}[rest[1]], "conv_1", conv, rest[2]]
            elif rest[0] == "skip":
                rest = ["res", "1" if model.blocks[n].skip.downsample else "0", *rest[2:]]
            else:
                rest = [{"feature": "deep", "scale": "alpha"}.get(rest[0], rest[0]), *rest[1:]]
            parts = ["blocks", "b%d_l%d" % where[n], *rest]
        elif parts[0] in ("stem", "head_project"):
            parts = ["conv1" if parts[0] == "stem" else "conv7", *parts[1:]]
        else:  # the 2048-wide layer and the classifier: 1x1(x1) convs with biases
            parts = ["classifier", "0" if parts[0] == "head_hidden" else "3", "conv_1", conv, parts[1]]
            value = value.reshape(*value.shape, *(1,) * (2 if model.causal else 3)) if value.dim() == 2 else value
        if len(parts) > 2 and parts[-2] in sub:
            parts[-2:-1] = sub[parts[-2]].split(".")
        if model.causal and value.dim() == 5:
            value = value[..., 0] if parts[-3] == "conv_2" else value[:, :, 0]
        out[".".join(parts)] = value
    return out


# the port's own state dicts (its code, A0 at random init): key counts, and names and shapes examples
PORT_KEYS = {"movinet_a0": (385, {"conv1.conv_1.conv3d.weight": (8, 3, 1, 3, 3), "blocks.b0_l0.alpha": (),
                                  "blocks.b0_l0.se.fc1.conv_1.conv3d.weight": (8, 24, 1, 1, 1),
                                  "blocks.b1_l0.deep.conv_1.conv3d.weight": (80, 1, 3, 3, 3),
                                  "blocks.b1_l0.res.1.conv_1.conv3d.weight": (32, 8, 1, 1, 1),
                                  "blocks.b0_l0.res.1.conv_1.norm.running_mean": (8,),
                                  "blocks.b4_l3.project.conv_1.norm.running_var": (104,),
                                  "conv7.conv_1.conv3d.weight": (480, 104, 1, 1, 1),
                                  "classifier.3.conv_1.conv3d.weight": (600, 2048, 1, 1, 1)}),
             "movinet_a0_stream": (451, {"conv1.conv_1.conv2d.weight": (8, 3, 3, 3), "blocks.b0_l0.alpha": (),
                                         "blocks.b0_l0.se.fc1.conv_1.conv2d.weight": (16, 48, 1, 1),
                                         "blocks.b1_l0.deep.conv_1.conv2d.weight": (80, 1, 3, 3),
                                         "blocks.b1_l0.deep.conv_2.conv2d.weight": (80, 1, 3, 1),
                                         "blocks.b1_l0.res.1.conv_1.conv2d.weight": (32, 8, 1, 1),
                                         "blocks.b4_l3.project.conv_1.norm.running_var": (104,),
                                         "conv7.conv_1.conv2d.weight": (480, 104, 1, 1),
                                         "classifier.3.conv_1.conv2d.weight": (600, 2048, 1, 1)})}


@pytest.mark.parametrize("name", sorted(PORT_KEYS))
def test_port_release_loads_by_tag(name, tmp_path, monkeypatch):
    """The port's file (fabricated in its layout, served by the weights mirror) loads by its tag into
    the same function, without TensorFlow."""
    count, examples = PORT_KEYS[name]
    src = _randomised(name)
    theirs = port_layout(src)
    assert len(theirs) == count
    assert {k: tuple(theirs[k].shape) for k in examples} == examples
    record = zoo.weights_info(f"{name}.kinetics600_pytorch")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    torch.save(theirs, mirror / record.file_names[0])
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(mirror))
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    dst = zoo.build(name, pretrained="kinetics600_pytorch").eval()
    x = torch.rand(1, 3, 3, 40, 40)
    with torch.no_grad():
        assert torch.equal(src(x), dst(x))


def test_train_pretrained_fine_tunes_from_the_port_release(tmp_path, monkeypatch, capsys):
    """`zoo train movinet_a0_stream --pretrained kinetics600_pytorch`: the release under every layer
    but the classifier, which is new for the data's classes."""
    from zoo.cli import main
    from zoo.data import synth

    src = _randomised("movinet_a0_stream")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    torch.save(port_layout(src), mirror / "modelA0_stream_statedict_v3")
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(mirror))
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    synth.generate(str(tmp_path / "data"), ["moving_right", "moving_left"], per_class=2, frames=8, size=32, seed=0)
    out = tmp_path / "run"
    assert main(["train", "movinet_a0_stream", "--pretrained", "kinetics600_pytorch", "--data", str(tmp_path / "data"),
                 "--out", str(out), "--epochs", "1", "--batch-size", "2", "--frames", "4", "--size", "32",
                 "--lr", "0.01", "--freeze", "backbone", "--no-progress"]) == 0
    assert "fine-tuning from movinet_a0_stream.kinetics600_pytorch: loaded 449 tensors; re-initialised classifier" \
        in capsys.readouterr().out
    weights = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    assert torch.equal(weights["blocks.10.feature.conv_temporal.weight"], src.blocks[10].feature.conv_temporal.weight)
    assert weights["fc.weight"].shape == (2, 2048)


def test_every_architecture_builds_as_specified():
    for arch, (stem, stages, project) in ARCHS.items():
        model = zoo.build(f"movinet_{arch}")
        assert len(model.blocks) == sum(len(blocks) for _, blocks in stages)
        assert model.stem.conv.out_channels == stem and model.head_project.conv.out_channels == project
    assert zoo.model_info("movinet_a2").crop_size == 224 and zoo.model_info("movinet_a5_stream").num_frames == 120
    assert zoo.weights_info("movinet_a0_stream").categories[:2] == ("abseiling", "acting in play")


# -- live streams --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """1 s at 15 fps, 40 px."""
    import numpy as np

    from zoo.data import synth

    path = str(tmp_path_factory.mktemp("movinet_live") / "clip.mp4")
    synth.write_video(path, synth.render_clip("moving_right", np.random.default_rng(3), 40, 15, "easy"), fps=15)
    return path


def test_live_stream_predicts_every_frame_as_the_clip_so_far(video, capsys):
    """`zoo stream`'s online path (`LiveRunner`) on the stream form: one prediction per frame, each the
    model's softmax on the clip of every frame up to it; the fp32 fast path streams the same."""
    from zoo.cli import main
    from zoo.data import Record, VideoDataset
    from zoo.data.stream import FrameStream
    from zoo.inference.live import LiveRunner

    model = _randomised("movinet_a0_stream", num_classes=5)
    info = model.info.replace(crop_size=32, resize_size=32)
    with FrameStream(video) as stream:
        got = list(LiveRunner(model, info).run(stream, pace=False, drop=False))
    assert [p.frame_index for p in got] == list(range(15))
    clip = VideoDataset([Record(path=video, label=None)], list("abcde"), info.replace(num_frames=15, sampling_rate=1),
                        train=False, views=(1, 1))[0]["video"]
    with torch.no_grad():
        for p in (got[0], got[6], got[14]):
            expect = model(clip[:, :, :p.frame_index + 1]).softmax(-1)[0]
            torch.testing.assert_close(p.probs, expect, rtol=1e-4, atol=1e-5)
    with FrameStream(video) as stream:
        fast = list(LiveRunner(zoo.optimize(model), info).run(stream, pace=False, drop=False))
    torch.testing.assert_close(torch.stack([p.probs for p in fast]), torch.stack([p.probs for p in got]),
                               rtol=1e-4, atol=1e-5)
    assert main(["stream", "movinet_a0_stream", video, "--size", "32"]) == 0
    assert "movinet_a0_stream online: one frame per prediction" in capsys.readouterr().out


# -- the release archives ------------------------------------------------------------------
def _tarball(path, members):
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def test_release_archive_needs_tensorflow_only_to_convert(tmp_path, monkeypatch):
    """A Model Garden archive is read through TensorFlow (at conversion time): without it, one line
    that says how to convert; its files are extracted by name alone, never where the archive says."""
    import sys

    from zoo.models import read_checkpoint

    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as if not installed
    outside = tmp_path / "evil.index"
    path = _tarball(tmp_path / "movinet_a0_base.tar.gz", {"movinet_a0_base/ckpt-1.index": b"x",
                                                          "movinet_a0_base/ckpt-1.data-00000-of-00001": b"y",
                                                          "../evil.index": b"z"})
    with pytest.raises(BadCheckpoint, match="expected one TensorFlow checkpoint"):  # two prefixes: ckpt-1 and evil
        read_checkpoint(path)
    assert not outside.exists()
    path = _tarball(tmp_path / "movinet_a0_stream.tar.gz", {"movinet_a0_stream/ckpt-1.index": b"x",
                                                            "movinet_a0_stream/ckpt-1.data-00000-of-00001": b"y",
                                                            "movinet_a0_stream/checkpoint": b"z"})
    with pytest.raises(BadCheckpoint, match="pip install tensorflow-cpu.*zoo convert"):
        read_checkpoint(path)


# -- export --------------------------------------------------------------------------------
def test_stream_export_carries_its_state_through_onnxruntime(tmp_path, capsys):
    """The stream form's per-frame step exported to ONNX with its state as explicit inputs and
    outputs: run in onnxruntime frame by frame, outputs fed back, it gives the model's logits on the
    clip of frames 1..t; the sidecar says how to loop; `zoo export --stream` prints the check."""
    pytest.importorskip("onnxruntime")
    from zoo.cli import main
    from zoo.inference.export import OnnxRuntimeModel, export_stream, read_export

    model = _randomised("movinet_a0_stream", num_classes=7)
    path = str(tmp_path / "step.onnx")
    meta = export_stream(model, path, fmt="onnx", height=40, width=40, verify=True)
    assert meta["verification"]["passed"] and read_export(path)["stream"] == meta["stream"]
    state = {s["name"]: torch.zeros(s["shape"]) for s in meta["stream"]["state"]}
    assert meta["stream"]["inputs"] == ["frame", *(f"state.{n}" for n in state)]
    session = OnnxRuntimeModel(path).session
    x = torch.rand(1, 3, 5, 40, 40)
    current = [v.numpy() for v in state.values()]
    for t in range(5):
        logits, *current = session.run(None, dict(zip(meta["stream"]["inputs"], [x[:, :, t].numpy(), *current])))
        with torch.no_grad():
            want = model(x[:, :, :t + 1])
        torch.testing.assert_close(torch.from_numpy(logits), want, rtol=1e-4, atol=1e-4 * want.abs().max().item())
    with pytest.raises(UsageError, match="base form"):
        export_stream(zoo.build("movinet_a0"), str(tmp_path / "base.onnx"), fmt="onnx", height=40, width=40)
    assert main(["export", "movinet_a0_stream", "--format", "pt2", "--out", str(tmp_path / "step.pt2"), "--stream",
                 "--size", "40"]) == 0
    assert "frame by frame over 8 frames, state fed back" in capsys.readouterr().out
