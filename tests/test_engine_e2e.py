"""End to end on tiny SynthMotion sets: learning (TSM beats chance clearly and uses temporal order),
fine-tuning, evaluation, resume after SIGKILL, 2-process eval, corrupt videos. Real decoding, real
models (ResNet-18 TSM at 32 px), CPU only."""
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch

import zoo
from zoo.cli import main
from zoo.engine import TrainConfig, load_eval, train
from zoo.engine.checkpoint import load_checkpoint
from zoo.engine.metrics import compute_metrics

pytestmark = pytest.mark.slow  # training runs, subprocesses, the demo: `pytest -m "not slow"` skips them

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--frames", "4", "--size", "32", "--set", "model_args.backbone=resnet18"]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    from zoo.data import synth
    out = tmp_path_factory.mktemp("synth")
    synth.generate(str(out), classes=2, per_class=6, frames=8, size=32, seed=0)
    return str(out)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# The learning check: two pairs of time-reversed twins, easy difficulty (no distractors or jitter,
# large high-contrast objects, large motion; the class is still decided only by motion).
# Measured on 2 CPU cores (4 segments, 32 px, ResNet-18 TSM from scratch, AdamW 1e-3, 4 epochs):
# val top-1 90-100 % (chance 25 %) and 0 % with the frames reversed, over data/training seeds 0-5
# with 1 or 2 torch threads (15-40 s).
EASY = dict(classes="moving_right,moving_left,moving_down,moving_up", per_class=40, frames=8, size=32,
            difficulty="easy")
LEARN = ["--epochs", "4", "--batch-size", "8", "--optimizer", "adamw", "--lr", "0.001", "--no-progress", *SMALL,
         "weight_decay=0.0001", "warmup_epochs=1", "eval_every=0"]


@pytest.fixture(scope="module")
def easy_dir(tmp_path_factory):
    from zoo.data import synth
    out = tmp_path_factory.mktemp("easy")
    synth.generate(str(out), seed=0, **EASY)
    return str(out)


@pytest.fixture(scope="module")
def learned(easy_dir, tmp_path_factory):
    """A small TSM trained from scratch on easy SynthMotion through `zoo train` (15-40 s on 2 cores).

    One torch thread: two threads are ~2x faster on an idle machine but many times slower when
    another process competes for the cores."""
    out = str(tmp_path_factory.mktemp("learned") / "tsm")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", "tsm_r50", "--data", easy_dir, "--out", out, *LEARN]) == 0
    finally:
        torch.set_num_threads(before)
    return out


def test_training_beats_chance(learned, easy_dir, tmp_path):
    """The whole loop (decoding, augmentation with flip label swaps, AdamW, schedule, harness) learns
    classes that only temporal order separates, and the trained model really uses that order."""
    metrics = json.load(open(os.path.join(learned, "eval", "metrics.json")))
    assert metrics["num_videos"] == 40 and metrics["num_classes"] == 4
    assert metrics["video_top1"] >= 60, metrics  # chance 25; an order-invariant model tops out near 50
    history = json.load(open(os.path.join(learned, "history.json")))
    assert len(history) == 4 and history[-1]["train_loss"] < 0.8 * history[0]["train_loss"], history
    # played backwards, every clip looks like its twin class: a model that uses the order gets them wrong
    out = str(tmp_path / "rev")
    assert main(["eval", "--run-dir", learned, "--data", easy_dir, "--temporal-order", "reversed", "--out", out,
                 "--no-progress"]) == 0
    rev = json.load(open(os.path.join(out, "metrics.json")))
    assert rev["num_videos"] == 40 and rev["video_top1"] <= 30, rev  # measured 0


def test_timeline_follows_the_action_across_clips(learned, tmp_path):
    """A video of unseen easy SynthMotion clips of different classes one after another (8 frames
    each), windows of one clip every frame: each window that lies within one clip names that
    clip's class, so the timeline changes class within one window of every boundary."""
    import numpy as np

    from zoo.data import synth

    order = ["moving_right", "moving_down", "moving_left", "moving_up", "moving_right", "moving_up",
             "moving_left", "moving_down"]
    clips = [synth.render_clip(c, np.random.default_rng([200, k]), 32, 8, "easy") for k, c in enumerate(order)]
    video = str(tmp_path / "one_after_another.mp4")
    synth.write_video(video, np.concatenate(clips), fps=15)
    out = str(tmp_path / "timeline")
    assert main(["predict", "--run-dir", learned, video, "--timeline", "--out", out, "--window-sec", str(8 / 15),
                 "--stride-sec", str(1 / 15), "--no-progress"]) == 0
    doc = json.load(open(os.path.join(out, "timeline.json")))
    top1 = {w["first_frame"]: w["top"][0][0] for w in doc["windows"]}
    assert len(top1) == 8 * 8 - 8 + 1 and doc["window_frames"] == 8
    assert [top1[8 * i] for i in range(len(order))] == order  # measured: top-1 probability 0.79-0.99
    # with windows that do not overlap, the segments are the clips, boundaries included
    assert main(["predict", "--run-dir", learned, video, "--timeline", "--out", out, "--window-sec", str(8 / 15),
                 "--stride-sec", str(8 / 15), "--no-progress"]) == 0
    segs = json.load(open(os.path.join(out, "timeline.json")))["segments"]
    assert [s["label"] for s in segs] == order
    assert [s["start"] for s in segs] == pytest.approx([8 * i / 15 for i in range(len(order))], abs=1e-3)


def test_finetuning_reinitialises_the_classifier(learned, tmp_path, capsys):
    """--weights from the 4-class model into a 2-class task: the classifier is re-initialised, the rest
    is loaded, and a few epochs on new clips suffice (the features already separate the twins).
    Measured: 100 % from 2 trained models x 5 data seeds (2 epochs on 16 clips per class: down to 62.5 %)."""
    from zoo.data import synth
    data = str(tmp_path / "updown")
    synth.generate(data, classes="moving_down,moving_up", per_class=24, frames=8, size=32, seed=1,
                   difficulty="easy")
    out = str(tmp_path / "run")
    assert main(["train", "tsm_r50", "--data", data, "--out", out, "--epochs", "4", "--batch-size", "4",
                 "--optimizer", "adamw", "--lr", "0.001", "--weights", os.path.join(learned, "model.pt"),
                 "--no-progress", *SMALL, "eval_every=0"]) == 0
    assert "re-initialised classifier (fc.weight, fc.bias)" in capsys.readouterr().out
    metrics = json.load(open(os.path.join(out, "eval", "metrics.json")))
    assert metrics["num_videos"] == 12 and metrics["num_classes"] == 2
    assert metrics["video_top1"] >= 75, metrics  # chance 50


def _train_argv(data, out, epochs=2):
    return ["train", "tsm_r50", "--data", data, "--out", out, "--epochs", str(epochs), "--batch-size", "4",
            "--lr", "0.01", "--no-progress", *SMALL]


def _state(path):
    return load_checkpoint(path)


# Run as `python -c FAULT POINT ARGV...`: `zoo ARGV...` that SIGKILLs itself at POINT.
#   step:N          inside the N-th optimizer step (mid-epoch)
#   partial:NAME@K  halfway through the K-th write of NAME (its temporary file half written)
#   written:NAME@K  after the K-th write of NAME, before its rename (a whole temporary file left)
#   rename:DIR      after the first rename of a file set into DIR (the set half replaced)
FAULT = """
import os, signal, sys
import torch
import zoo._files as files
from zoo.cli import main

def die():
    os.kill(os.getpid(), signal.SIGKILL)

point, argv = sys.argv[1], sys.argv[2:]
kind, _, arg = point.partition(":")
name, _, k = arg.partition("@")
count = [0]
if kind == "step":
    real_step = torch.optim.SGD.step
    def step(self, *a, **kw):
        count[0] += 1
        if count[0] == int(arg):
            die()
        return real_step(self, *a, **kw)
    torch.optim.SGD.step = step
elif kind in ("partial", "written"):
    real_write = files.write_temp
    def write_temp(path, mode, write):
        if os.path.basename(path) == name:
            count[0] += 1
            if count[0] == int(k) and kind == "partial":
                def half(f):
                    f.write(b"\\0" * 1000 if "b" in mode else "x" * 1000)
                    f.flush()
                    die()
                return real_write(path, mode, half)
            tmp = real_write(path, mode, write)
            if count[0] == int(k):
                die()
            return tmp
        return real_write(path, mode, write)
    files.write_temp = write_temp
elif kind == "rename":
    real_replace = os.replace
    def replace(src, dst):
        real_replace(src, dst)
        if os.path.basename(os.path.dirname(os.path.abspath(dst))) == arg and not dst.endswith(files.JOURNAL):
            die()
    os.replace = replace
sys.exit(main(argv))
"""


def _debris(run_dir):
    """Temporary files and unfinished set replacements left anywhere in a run directory."""
    return [os.path.join(d, f) for d, _, names in os.walk(run_dir) for f in names
            if ".tmp" in f or f == ".zoo-commit.json"]


def _history(state):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in state["history"]]


@pytest.mark.parametrize("point, left", [
    ("step:4", "last.pt of epoch 1"),  # mid-epoch 2 (2 steps per epoch)
    ("partial:last.pt@2", "last.pt of epoch 1 and half a temporary last.pt"),
    ("written:model.pt@1", "last.pt of epoch 2 and a whole temporary model.pt"),
    ("rename:eval", "model.pt and an evaluation half replaced"),
])
def test_sigkill_then_resume_is_bit_identical_and_leaves_nothing(point, left, synth_dir, straight_run, tmp_path,
                                                                capsys, one_thread):
    """Fault injection: `zoo train` SIGKILLed at one point (mid-epoch, while writing a checkpoint,
    between writing the final weights and renaming them, between the renames of the final
    evaluation), then `--resume`: the final weights, optimizer state, history and evaluation equal an
    uninterrupted run's bit for bit, and no temporary file or half-done replacement is left."""
    run = str(tmp_path / "killed")
    proc = subprocess.run([sys.executable, "-c", FAULT, point, *_train_argv(synth_dir, run, 2)], env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, f"not killed at {point}: {proc.stderr[-2000:]}"
    if point.startswith(("partial", "written")):
        assert _debris(run), f"the kill at {point} should have left a temporary file"
    if point.startswith("rename"):
        assert os.path.exists(os.path.join(run, "eval", ".zoo-commit.json"))
    assert main([*_train_argv(synth_dir, run, 2), "--resume"]) == 0, left
    printed = capsys.readouterr().out
    assert "warning" not in printed  # same settings and conditions: nothing to warn about
    assert _debris(run) == []
    a, b = _state(os.path.join(run, "last.pt")), _state(os.path.join(straight_run, "last.pt"))
    assert a["epoch"] == b["epoch"] == 2 and _history(a) == _history(b)
    for k, v in b["model"].items():
        assert torch.equal(a["model"][k], v), k
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sb)
    final_a = torch.load(os.path.join(run, "model.pt"), weights_only=True)["state_dict"]
    final_b = torch.load(os.path.join(straight_run, "model.pt"), weights_only=True)["state_dict"]
    assert final_a.keys() == final_b.keys() and all(torch.equal(final_a[k], final_b[k]) for k in final_b)
    ea, eb = load_eval(os.path.join(run, "eval")), load_eval(os.path.join(straight_run, "eval"))
    assert torch.equal(ea.view_logits, eb.view_logits) and ea.paths == eb.paths
    ma = json.load(open(os.path.join(run, "eval", "metrics.json")))
    mb = json.load(open(os.path.join(straight_run, "eval", "metrics.json")))
    assert ma["video_top1"] == mb["video_top1"] and ma["confusion_matrix"] == mb["confusion_matrix"]


@pytest.fixture(scope="module")
def straight_run(synth_dir, tmp_path_factory):
    """The uninterrupted run the killed ones are compared with (one torch thread, like theirs)."""
    out = str(tmp_path_factory.mktemp("straight") / "run")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(_train_argv(synth_dir, out, 2)) == 0
    finally:
        torch.set_num_threads(before)
    assert "epochs: 2" in open(os.path.join(out, "config.yaml")).read()  # the resolved config is saved with the run
    return out


def test_resuming_under_other_conditions_warns_once(straight_run, synth_dir, tmp_path, capsys):
    """A run records its threads, processes, torch version and determinism settings; resuming with
    another thread count (which changes float summation order) says so, once, naming it."""
    run = str(tmp_path / "run")
    shutil.copytree(straight_run, run)
    conditions = _state(os.path.join(run, "last.pt"))["conditions"]
    assert conditions["threads"] == 1 and conditions["processes"] == 1 and conditions["torch"] == torch.__version__
    assert {"deterministic_algorithms", "cudnn_benchmark", "device"} <= set(conditions)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main([*_train_argv(synth_dir, run, 3), "--resume"]) == 0
    finally:
        torch.set_num_threads(before)
    warnings = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "threads 1 -> 2" in warnings[0], warnings


@pytest.fixture(scope="module")
def trained(synth_dir, tmp_path_factory):
    """A TSM trained for one epoch on standard SynthMotion (the learning check is test_training_beats_chance)."""
    out = str(tmp_path_factory.mktemp("run") / "tsm")
    cfg = TrainConfig(model="tsm_r50", data=synth_dir, out=out, frames=4, size=32, epochs=1, batch_size=4,
                      model_args={"backbone": "resnet18"}, amp="bf16", progress=False)
    train(cfg)
    return out


def _eval_argv(trained, data, out, *extra):
    return ["eval", "--run-dir", trained, "--data", data, "--views", "2x3", "--batch-size", "1", "--out", out,
            "--no-progress", *extra]


def test_harness_metrics_equal_direct_computation(trained, synth_dir, tmp_path, capsys):
    out = str(tmp_path / "ev")
    assert main(_eval_argv(trained, synth_dir, out)) == 0
    printed = capsys.readouterr().out
    saved = torch.load(os.path.join(out, "logits.pt"), weights_only=True)
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    logits, labels = saved["view_logits"], saved["labels"]
    assert logits.shape[:2] == (len(labels), 6) and metrics["num_videos"] == len(labels) == 4
    assert "4 of 4 videos evaluated" in printed
    # the saved logits are the model's outputs on the dataset's views
    from zoo.data import build_dataset
    spec = zoo.resolve("tsm_r50", frames=4, size=32, views=(2, 3), num_classes=2, backbone="resnet18",
                       weights=os.path.join(trained, "model.pt"))
    ds = build_dataset(synth_dir, spec.info, "val")
    model = zoo.build(spec).eval()
    with torch.no_grad():
        direct = torch.stack([model(ds[i]["video"]) for i in range(len(ds))])
    torch.testing.assert_close(logits, direct, rtol=1e-4, atol=1e-5)
    # video top-1 / mean class accuracy / confusion matrix from the saved logits, by hand
    probs = logits.softmax(-1).mean(1)
    pred = probs.argmax(-1)
    assert metrics["video_top1"] == pytest.approx(100.0 * (pred == labels).float().mean().item())
    clip = (logits.argmax(-1) == labels[:, None]).float().mean().item()
    assert metrics["clip_top1"] == pytest.approx(100.0 * clip)
    per_class = [(pred[labels == c] == c).float().mean().item() for c in labels.unique()]
    assert metrics["mean_class_accuracy"] == pytest.approx(100.0 * sum(per_class) / len(per_class))
    cm = [[int(((labels == t) & (pred == p)).sum()) for p in range(2)] for t in range(2)]
    assert metrics["confusion_matrix"] == cm
    assert os.path.getsize(os.path.join(out, "confusion_matrix.png")) > 0
    # re-aggregation from the saved logits, without the model
    assert main(["eval", "--from", out, "--agg", "max"]) == 0
    m_max = json.load(open(os.path.join(out, "metrics_max.json")))
    pred_max = logits.softmax(-1).amax(1).argmax(-1)
    assert m_max["video_top1"] == pytest.approx(100.0 * (pred_max == labels).float().mean().item())
    ref = compute_metrics(logits, labels, agg="max", class_names=saved["class_names"])
    for key in ("video_top1", "mean_class_accuracy", "confusion_matrix", "per_class_accuracy"):
        assert m_max[key] == ref[key], key


def test_two_process_eval_equals_one_process(trained, synth_dir, tmp_path):
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    assert main(_eval_argv(trained, synth_dir, one, "--temporal-order", "shuffled")) == 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "zoo",
           *_eval_argv(trained, synth_dir, two, "--temporal-order", "shuffled")]
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "on 2 process(es)" in r.stdout
    m1, m2 = (json.load(open(os.path.join(d, "metrics.json"))) for d in (one, two))
    for key in ("num_videos", "clip_top1", "video_top1", "video_top5", "mean_class_accuracy", "mAP",
                "confusion_matrix", "per_class_accuracy"):
        assert m1[key] == m2[key], key
    e1, e2 = load_eval(one), load_eval(two)
    assert e1.indices == e2.indices == list(range(4))  # each video once: no duplicates, no padding
    torch.testing.assert_close(e1.view_logits, e2.view_logits)


def test_corrupt_video_is_reported_not_fatal(trained, synth_dir, tmp_path, capsys):
    data = str(tmp_path / "data")
    shutil.copytree(synth_dir, data)
    import csv
    rel = list(csv.DictReader(open(os.path.join(data, "val.csv"))))[1]["path"]
    with open(os.path.join(data, rel), "wb") as f:
        f.write(b"this is not an mp4 file" * 10)
    out = str(tmp_path / "ev")
    assert main(_eval_argv(trained, data, out)) == 2  # default --on-error error: stops, names the file
    err = capsys.readouterr().err.strip()
    assert rel in err and len(err.splitlines()) == 1
    assert main(_eval_argv(trained, data, out, "--on-error", "skip")) == 0
    printed = capsys.readouterr().out
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert metrics["num_videos"] == 3 and metrics["num_skipped"] == 1
    assert metrics["skipped"][0]["path"].endswith(rel) and metrics["skipped"][0]["error"]
    assert "3 of 4 videos evaluated" in printed and rel in printed


def test_predict_and_features(trained, synth_dir, tmp_path, capsys):
    video = os.path.join(synth_dir, "videos", "moving_left", "moving_left_0000.mp4")
    assert main(["predict", "--run-dir", trained, video]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and {lines[1].split()[1], lines[2].split()[1]} == {"moving_left", "moving_right"}
    out = str(tmp_path / "f.pt")
    assert main(["features", "tsm_r50", video, video, "--run-dir", trained, "--views", "1x3", "--out", out]) == 0
    f = torch.load(out, weights_only=True)
    assert f["features"].shape == (2, 512) and f["view_features"].shape == (2, 3, 512)
    with open(os.path.join(trained, "classes.txt")) as fh:
        assert f["categories"] == fh.read().split()
    torch.testing.assert_close(f["features"][0], f["features"][1])
    assert main(["predict", "tsm_r50", str(tmp_path / "missing.mp4")]) == 2


def test_a_runs_weights_carry_its_identity(learned, easy_dir, capsys):
    """model.pt names its model, options, classes and protocol: `--weights` alone rebuilds the
    ResNet-18 TSM at 32 px with its class names (the README's train -> predict path)."""
    import zoo

    weights = os.path.join(learned, "model.pt")
    video = os.path.join(easy_dir, "videos", "moving_left", "moving_left_0000.mp4")
    assert main(["predict", video, "--weights", weights, "--no-optimize"]) == 0
    by_weights = capsys.readouterr().out.splitlines()
    assert main(["predict", "--run-dir", learned, video, "--no-optimize"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == by_weights[1:]
    assert by_weights[1].split()[1] in {"moving_right", "moving_left", "moving_down", "moving_up"}
    model = zoo.build("tsm_r50", weights=weights)
    assert model.build_args["backbone"] == "resnet18" and model.info.crop_size == 32 and model.info.num_frames == 4
    with open(os.path.join(learned, "classes.txt")) as f:
        assert model.categories == tuple(f.read().split())
    assert main(["predict", "tsn_r50", video, "--weights", weights]) == 2
    err = capsys.readouterr().err
    assert "is a tsm_r50 checkpoint" in err and len(err.strip().splitlines()) == 1


def test_demo_smoke(tmp_path, capsys):
    out = str(tmp_path / "demo")
    assert main(["demo", "--out", out, "--models", "tsn_r50,tsm_r50", "--classes", "moving_right,moving_left",
                 "--per-class", "4", "--data-frames", "8", "--data-size", "32", "--segments", "2", "--size", "32",
                 "--epochs", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "tsn_r50" in printed and "GFLOPs/view" in printed and "twin acc" in printed
    assert "seed 0" in printed and "thread(s)" in printed and "difficulty easy" in printed
    summary = json.load(open(os.path.join(out, "summary.json")))
    models = summary["models"]
    assert set(models) == {"tsn_r50", "tsm_r50"}
    assert summary["settings"]["difficulty"] == "easy" and summary["settings"]["epochs"] == 1
    assert float(models["tsn_r50"]["GFLOPs/view"]) == pytest.approx(float(models["tsm_r50"]["GFLOPs/view"]))
    assert json.load(open(os.path.join(out, "data", "classes.json")))["settings"]["difficulty"] == "easy"


def test_ddp_training_two_processes(synth_dir, tmp_path):
    out = str(tmp_path / "ddp")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "zoo",
           *_train_argv(synth_dir, out, epochs=1), "batch_size=2"]
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2 process(es)" in r.stdout
    history = json.load(open(os.path.join(out, "history.json")))
    assert len(history) == 1 and history[0]["train_clips"] == 8  # both ranks' clips counted once
    assert len(_state(os.path.join(out, "last.pt"))["rng"]) == 2  # every rank's RNG state saved
    metrics = json.load(open(os.path.join(out, "eval", "metrics.json")))
    assert metrics["num_videos"] == 4 and metrics["world_size"] == 2

    # the same job on two "nodes" (two torchrun launchers of one process each, meeting at a c10d
    # rendezvous on 127.0.0.1, as the README's multi-node commands do): the same run, weight for weight
    nodes = str(tmp_path / "nodes")
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1", "--rdzv_backend=c10d",
              f"--rdzv_endpoint=127.0.0.1:{_free_port()}", "--rdzv_id=zoo-test", "-m", "zoo"]
    procs = [subprocess.Popen(launch + [*_train_argv(synth_dir, nodes, epochs=1), "batch_size=2"], env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    ends = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[1][-2000:] for e in ends]
    assert "2 process(es)" in "".join(e[0] for e in ends)
    assert json.load(open(os.path.join(nodes, "history.json")))[0]["train_clips"] == 8
    one, two = _state(os.path.join(out, "model.pt")), _state(os.path.join(nodes, "model.pt"))
    one, two = one["state_dict"], two["state_dict"]
    assert one.keys() == two.keys() and all(torch.equal(one[k], two[k]) for k in one)
    assert json.load(open(os.path.join(nodes, "eval", "metrics.json")))["video_top1"] == metrics["video_top1"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
