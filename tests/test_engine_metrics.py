"""Metrics of the evaluation harness against direct, loop-by-loop computations."""
import math
import os

import numpy as np
import pytest
import torch

from zoo.engine.config import TrainConfig, apply_overrides, load_config, parse_views
from zoo.engine.metrics import aggregate_views, compute_metrics, mean_average_precision


def _direct(view_logits: np.ndarray, labels: np.ndarray, agg: str):
    n, v, k = view_logits.shape
    e = np.exp(view_logits - view_logits.max(-1, keepdims=True))
    probs = e / e.sum(-1, keepdims=True)
    scores = {"prob-mean": probs.mean(1), "logit-mean": view_logits.mean(1), "max": probs.max(1)}[agg]
    clip1 = np.mean([view_logits[i, j].argmax() == labels[i] for i in range(n) for j in range(v)]) * 100
    top1 = np.mean([scores[i].argmax() == labels[i] for i in range(n)]) * 100
    top5 = np.mean([labels[i] in np.argsort(-scores[i])[:5] for i in range(n)]) * 100
    per_class = {}
    for c in range(k):
        members = [i for i in range(n) if labels[i] == c]
        if members:
            per_class[c] = np.mean([scores[i].argmax() == c for i in members]) * 100
    return scores, clip1, top1, top5, per_class


@pytest.mark.parametrize("agg", ["prob-mean", "logit-mean", "max"])
def test_metrics_match_direct_computation(agg):
    rng = np.random.default_rng(0)
    n, v, k = 37, 3, 8
    labels = rng.integers(0, k - 1, n)  # class k-1 never occurs: excluded from the mean class accuracy
    view_logits = rng.normal(size=(n, v, k)) + 2.0 * np.eye(k)[labels][:, None] * rng.random((n, 1, 1))
    m = compute_metrics(torch.from_numpy(view_logits), torch.from_numpy(labels), agg=agg)
    scores, clip1, top1, top5, per_class = _direct(view_logits, labels, agg)
    assert m["num_videos"] == n and m["num_views"] == v
    assert m["clip_top1"] == pytest.approx(clip1)
    assert m["video_top1"] == pytest.approx(top1)
    assert m["video_top5"] == pytest.approx(top5)
    assert m["mean_class_accuracy"] == pytest.approx(np.mean(list(per_class.values())))
    assert m["per_class_accuracy"][str(k - 1)] is None
    for c, acc in per_class.items():
        assert m["per_class_accuracy"][str(c)] == pytest.approx(acc)
    cm = np.zeros((k, k), int)
    for i in range(n):
        cm[labels[i], scores[i].argmax()] += 1
    assert m["confusion_matrix"] == cm.tolist()
    assert 0 < m["mAP"] <= 100


def test_mean_class_accuracy_differs_from_top1_on_imbalanced_data():
    labels = torch.tensor([0, 0, 0, 1])
    logits = torch.tensor([[[5.0, 0.0]]] * 3 + [[[5.0, 0.0]]])  # always predicts class 0
    m = compute_metrics(logits, labels)
    assert m["video_top1"] == pytest.approx(75.0)
    assert m["mean_class_accuracy"] == pytest.approx(50.0)


def test_average_precision_by_hand():
    # class 0 positives ranked 1st and 3rd: AP = (1/1 + 2/3) / 2
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    targets = torch.tensor([[1, 0], [0, 1], [1, 0]])
    ap0 = (1 + 2 / 3) / 2
    ap1 = (1 / 2) / 1  # the single positive of class 1 is ranked 2nd (scores 0.3, 0.2, 0.1)
    assert mean_average_precision(scores, targets) == pytest.approx((ap0 + ap1) / 2)


def test_multilabel_gives_map():
    logits = torch.tensor([[[3.0, -3.0, 1.0]], [[-2.0, 2.0, 1.0]]])
    targets = torch.tensor([[1, 0, 1], [0, 1, 0]])
    m = compute_metrics(logits, targets)
    assert m["multilabel"] and m["mAP"] == pytest.approx(100 * (1 + 1 + 1) / 3)


def test_aggregation_rejects_unknown_method():
    with pytest.raises(ValueError, match="prob-mean"):
        aggregate_views(torch.zeros(1, 2, 3), "median")


def test_config_yaml_and_overrides(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("model: tsm_r50\nlr: 0.05\nepochs: 4\nmodel_args: {backbone: resnet18}\n")
    cfg = load_config(str(p))
    apply_overrides(cfg, ["lr=0.1", "lr_steps=[2,3]", "model_args.dropout=0.2", "clip_grad=null", "weight_decay=1e-4"])
    assert (cfg.model, cfg.lr, cfg.epochs, cfg.lr_steps, cfg.weight_decay) == ("tsm_r50", 0.1, 4, [2, 3], 1e-4)
    assert cfg.model_args == {"backbone": "resnet18", "dropout": 0.2} and cfg.clip_grad is None
    with pytest.raises(ValueError, match="unknown config key 'learning_rate'"):
        apply_overrides(cfg, ["learning_rate=1"])
    with pytest.raises(ValueError, match="must be an integer"):
        apply_overrides(cfg, ["epochs=2.5"])
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides(cfg, ["lr"])
    p.write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(str(p))
    assert parse_views("10x3") == (10, 3)
    with pytest.raises(ValueError, match="CLIPSxCROPS"):
        parse_views("10by3")
    assert math.isclose(TrainConfig().momentum, 0.9)


def test_lr_schedule_and_param_groups():
    from zoo.engine.training import build_optimizer, lr_factor
    cfg = TrainConfig(epochs=10, warmup_epochs=1, schedule="cosine", lr=0.1, min_lr=0.0)
    assert lr_factor(0, 10, cfg) == pytest.approx(0.1)  # first warmup step
    assert lr_factor(9, 10, cfg) == pytest.approx(1.0)
    assert lr_factor(10, 10, cfg) == pytest.approx(1.0)  # cosine starts at the top
    assert lr_factor(55, 10, cfg) == pytest.approx(0.5)  # half way through the cosine
    assert lr_factor(100, 10, cfg) == pytest.approx(0.0, abs=1e-12)
    step = TrainConfig(epochs=10, schedule="step", lr_steps=[4, 8], lr_gamma=0.1)
    assert [lr_factor(e * 10, 10, step) for e in (0, 3, 4, 8)] == pytest.approx([1, 1, 0.1, 0.01])
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    opt = build_optimizer(model, TrainConfig(weight_decay=5e-4))
    assert [g["weight_decay"] for g in opt.param_groups] == [5e-4, 0.0]
    assert len(opt.param_groups[0]["params"]) == 1 and len(opt.param_groups[1]["params"]) == 3


def test_atomic_checkpoint_and_rng_round_trip(tmp_path):
    import random

    import numpy as np

    from zoo.engine.checkpoint import atomic_save, get_rng_state, load_checkpoint, set_rng_state
    state = get_rng_state()
    atomic_save({"rng": state, "w": torch.ones(2)}, str(tmp_path / "c.pt"))
    assert os.listdir(tmp_path) == ["c.pt"]  # no temporary file left behind
    draws = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(load_checkpoint(str(tmp_path / "c.pt"))["rng"])  # weights_only=True
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == draws


def test_twin_metrics_counts_pairs_and_right_twin():
    from zoo.engine.metrics import twin_metrics

    classes = ["right", "left", "grow", "other"]
    twins = [["right", "left"]]
    confusion = [[6, 2, 2, 0],   # right: 8 of 10 inside its pair, 6 of those right
                 [3, 5, 0, 2],   # left: 8 of 10 inside, 5 right
                 [0, 0, 9, 1],   # not twinned: ignored
                 [0, 0, 0, 4]]
    pair, twin = twin_metrics(confusion, classes, twins)
    assert pair == 100.0 * 16 / 20 and twin == 100.0 * 11 / 16
    assert twin_metrics(confusion, classes, []) == (None, None)


def test_synth_generate_or_reuse(tmp_path):
    from zoo.data.synth import generate_or_reuse

    kw = dict(per_class=4, frames=4, size=16, seed=0, difficulty="easy")
    assert generate_or_reuse(str(tmp_path / "d"), "moving_right,moving_left", **kw)
    assert not generate_or_reuse(str(tmp_path / "d"), ["moving_right", "moving_left"], **kw)
    assert generate_or_reuse(str(tmp_path / "d"), "moving_right,moving_left", **{**kw, "seed": 1})



def test_models_declare_the_aggregations_the_harness_knows():
    import zoo
    from zoo.engine.config import AGGREGATIONS
    from zoo.models._info import VIEW_AGGREGATIONS

    assert AGGREGATIONS == VIEW_AGGREGATIONS
    # max: TCPNet; logit-mean: EAN
    assert {zoo.model_info(n).view_aggregation for n in zoo.list_models()} == {"prob-mean", "max", "logit-mean"}


def test_rmsprop_is_tensorflows():
    """``optimizer: rmsprop`` (MoViNet's recipe) is RMSprop in TensorFlow's form: epsilon inside the
    square root, the L2 weight decay on the gradient; one step from a zero momentum as computed by hand."""
    from zoo.engine.training import build_optimizer

    w = torch.nn.Parameter(torch.tensor([2.0, -1.0]))
    model = torch.nn.Module()
    model.w = w
    cfg = TrainConfig(optimizer="rmsprop", lr=0.5, momentum=0.9, rmsprop_decay=0.9, rmsprop_eps=1.0,
                      weight_decay=0.1, no_decay_bias_norm=False)
    opt = build_optimizer(model, cfg)
    w.grad = torch.tensor([0.4, 0.2])
    g = w.grad + 0.1 * w.detach()  # L2 on the gradient
    square = 0.9 * torch.ones(2) + 0.1 * g ** 2  # TensorFlow v1 / timm: the average starts at ones
    expected = w.detach() - 0.5 * g / torch.sqrt(square + 1.0)
    opt.step()
    torch.testing.assert_close(w.detach(), expected)
