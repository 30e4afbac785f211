"""Named training recipes (``zoo train --recipe NAME``): the official settings as config values,
each with the source that uses them, so a user need not read ``config.yaml`` to learn the keys.

A recipe sits between the defaults and everything the user gives (``--config``, flags, ``--set``);
the run's ``config.yaml`` records the resolved values and the recipe's name. Learning rates are
per batch of ``batch_size`` x processes, as the recipes state them: with a smaller batch, scale
``lr`` linearly (Goyal et al., 2017), e.g. ``--batch-size 8 --lr 0.00125`` for ``tsm``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict

from .._errors import UsageError
from ..models import bench_preset

__all__ = ["Recipe", "RECIPES", "recipe_values"]


@dataclass(frozen=True)
class Recipe:
    summary: str
    source: str
    values: Dict[str, Any] = field(default_factory=dict)
    # values that depend on the model (e.g. the model's small bench network)
    for_model: Callable[[str], Dict[str, Any]] = lambda name: {}


def _bench_network(name: str) -> Dict[str, Any]:
    bench = bench_preset(name)
    return {"frames": bench.frames, "size": 32, "model_args": dict(bench.model_args)}


RECIPES: Dict[str, Recipe] = {
    "tsm": Recipe(
        "TSM on Kinetics from ImageNet: SGD 0.01 per 64 clips, 50 epochs, steps at 20/40, wd 1e-4, grad clip 20, "
        "dropout 0.5, classifier lr x5 (fc_lr5), biases lr x2, every BN trained (--npb)",
        "mit-han-lab/temporal-shift-module README (Kinetics command) and main.py/opts.py",
        dict(pretrained="imagenet", epochs=50, batch_size=64, optimizer="sgd", lr=0.01, momentum=0.9,
             weight_decay=1e-4, schedule="step", lr_steps=[20, 40], lr_gamma=0.1, warmup_epochs=0.0, clip_grad=20.0,
             dropout=0.5, head_lr_mult=5.0, bias_lr_mult=2.0, freeze="none")),
    "tsm-finetune": Recipe(
        "TSM fine-tuned from Kinetics to a small dataset (UCF101): SGD 0.001 per 64 clips, 25 epochs, steps at "
        "10/20, wd 5e-4, grad clip 20, dropout 0.8, partial BN, classifier lr x5, biases lr x2",
        "mit-han-lab/temporal-shift-module scripts/finetune_tsm_ucf101_rgb_8f.sh",
        dict(pretrained="kinetics400", epochs=25, batch_size=64, optimizer="sgd", lr=0.001, momentum=0.9,
             weight_decay=5e-4, schedule="step", lr_steps=[10, 20], lr_gamma=0.1, warmup_epochs=0.0,
             clip_grad=20.0, dropout=0.8, head_lr_mult=5.0, bias_lr_mult=2.0, freeze="bn")),
    "slowfast": Recipe(
        "SlowFast on Kinetics from scratch: SGD 0.1 per 64 clips, 34 warmup epochs then cosine to epoch 196, "
        "wd 1e-4, dropout 0.5, no grad clip (PySlowFast warms up from 0.01, zoo from 0)",
        "facebookresearch/SlowFast configs/Kinetics/SLOWFAST_8x8_R50.yaml (SOLVER, MODEL.DROPOUT_RATE)",
        dict(pretrained=None, epochs=196, batch_size=64, optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4,
             schedule="cosine", warmup_epochs=34.0, clip_grad=None, dropout=0.5, head_lr_mult=1.0, bias_lr_mult=1.0,
             freeze="none")),
    "tada2d": Recipe(
        "TAda2D on Kinetics from ImageNet: SGD (Nesterov) 0.24 per 128 clips, 8 warmup epochs then cosine to "
        "epoch 100, wd 1e-4 (none on norm layers), dropout 0.5, no grad clip (the official warmup starts at 0.01, "
        "zoo's at 0)",
        "alibaba-mmai-research/TAdaConv configs/projects/tada/tada2d_k400.yaml and its _BASE_RUN "
        "(configs/pool/run/training/from_scratch_large.yaml)",
        dict(pretrained="imagenet", epochs=100, batch_size=128, optimizer="sgd", lr=0.24, momentum=0.9,
             nesterov=True, weight_decay=1e-4, schedule="cosine", warmup_epochs=8.0, clip_grad=None, dropout=0.5,
             head_lr_mult=1.0, bias_lr_mult=1.0, freeze="none")),
    "tcp": Recipe(
        "TCPNet on Kinetics from the ImageNet GCP ResNet-50: SGD 0.015 per 96 clips, 50 epochs, steps at 20/40, "
        "wd 1e-4, grad clip 20, dropout 0.5, classifier lr x5, biases lr x2, every BN trained (--npb); the "
        "official code also trains the temporal attention at lr x5 (lr_x_factor), which zoo does not apply "
        "(its multipliers are the classifier's and the biases')",
        "ZilinGao/Temporal-attentive-Covariance-Pooling-Networks-for-Video-Recognition "
        "script/K400/train_K400_TCP_TSN_8f_R50.sh and ops/models.py get_optim_policies",
        dict(pretrained="imagenet", epochs=50, batch_size=96, optimizer="sgd", lr=0.015, momentum=0.9,
             weight_decay=1e-4, schedule="step", lr_steps=[20, 40], lr_gamma=0.1, warmup_epochs=0.0, clip_grad=20.0,
             dropout=0.5, head_lr_mult=5.0, bias_lr_mult=2.0, freeze="none")),
    "tea": Recipe(
        "TEA on Something-Something v1 from ImageNet (Res2Net-50): SGD 0.02 per 64 clips, 50 epochs, steps at "
        "30/40/45, wd 5e-4, grad clip 20, dropout 0.5, classifier lr x5, biases lr x2, every BN trained (--npb)",
        "Phoenix1327/tea-action-recognition scripts/train_tea_something_rgb_8f.sh and its opts.py defaults "
        "(weight decay 5e-4, as TSM's)",
        dict(pretrained="imagenet", epochs=50, batch_size=64, optimizer="sgd", lr=0.02, momentum=0.9,
             weight_decay=5e-4, schedule="step", lr_steps=[30, 40, 45], lr_gamma=0.1, warmup_epochs=0.0,
             clip_grad=20.0, dropout=0.5, head_lr_mult=5.0, bias_lr_mult=2.0, freeze="none")),
    "stm": Recipe(
        "STM on Something-Something v1 or Kinetics from ImageNet: SGD 0.01 per 64 clips (8 GPUs x 8 clips of 8 "
        "frames), 50 epochs, steps at 30/40/45; the paper states no momentum, weight decay, dropout or grad clip: "
        "these are TSM's opts.py defaults (0.9, 5e-4, 0.5, 20)",
        "Jiang et al., STM, ICCV 2019: the paper's implementation details (no official code); the rest "
        "mit-han-lab/temporal-shift-module opts.py defaults",
        dict(pretrained="imagenet", epochs=50, batch_size=64, optimizer="sgd", lr=0.01, momentum=0.9,
             weight_decay=5e-4, schedule="step", lr_steps=[30, 40, 45], lr_gamma=0.1, warmup_epochs=0.0,
             clip_grad=20.0, dropout=0.5, head_lr_mult=1.0, bias_lr_mult=1.0, freeze="none")),
    "x3d": Recipe(
        "X3D-XS/S/M on Kinetics from scratch: SGD (Nesterov) 0.1 per 128 clips, 35 warmup epochs then cosine to "
        "epoch 300, wd 5e-5 (none on BN), dropout 0.5, no grad clip (PySlowFast warms up from 0.01, zoo from 0); "
        "X3D-L: the x3d-l recipe",
        "facebookresearch/SlowFast configs/Kinetics/X3D_XS.yaml, X3D_S.yaml, X3D_M.yaml (SOLVER, TRAIN.BATCH_SIZE, "
        "MODEL.DROPOUT_RATE) and slowfast/config/defaults.py (SOLVER.NESTEROV, BN.WEIGHT_DECAY)",
        dict(pretrained=None, epochs=300, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True,
             weight_decay=5e-5, schedule="cosine", warmup_epochs=35.0, clip_grad=None, dropout=0.5, head_lr_mult=1.0,
             bias_lr_mult=1.0, freeze="none")),
    "x3d-l": Recipe(
        "X3D-L on Kinetics from scratch: SGD (Nesterov) 0.05 per 64 clips, 35 warmup epochs then cosine to epoch 256, "
        "wd 5e-5 (none on BN), dropout 0.5, no grad clip",
        "facebookresearch/SlowFast configs/Kinetics/X3D_L.yaml and slowfast/config/defaults.py",
        dict(pretrained=None, epochs=256, batch_size=64, optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True,
             weight_decay=5e-5, schedule="cosine", warmup_epochs=35.0, clip_grad=None, dropout=0.5, head_lr_mult=1.0,
             bias_lr_mult=1.0, freeze="none")),
    "movinet": Recipe(
        "MoViNet on Kinetics-600 from scratch: RMSprop (decay 0.9, momentum 0.9, epsilon 1.0) 1.8 per 1024 clips, "
        "5.6 warmup epochs then cosine to epoch 224 (2145 and 85785 steps of 1024 of the 392k clips), L2 3e-5 "
        "(weight decay 6e-5 on the gradient), label smoothing 0.1, stochastic depth 0.2, gradient norm clipped at "
        "1 (the official clips each tensor; zoo the global norm), the model's dropout (0.5 base, 0.2 stream)",
        "tensorflow/models official/projects/movinet/configs/yaml/movinet_a0_k600_8x8.yaml (and its A1-A5 and "
        "stream siblings: the same trainer)",
        dict(pretrained=None, epochs=224, batch_size=1024, optimizer="rmsprop", lr=1.8, momentum=0.9,
             rmsprop_decay=0.9, rmsprop_eps=1.0, weight_decay=6e-5, schedule="cosine", warmup_epochs=5.6,
             clip_grad=1.0, label_smoothing=0.1, model_args={"drop_path_rate": 0.2}, head_lr_mult=1.0,
             bias_lr_mult=1.0, freeze="none")),
    "linear-probe": Recipe(
        "a linear classifier on frozen released features: the model's default weights, backbone and its BN "
        "statistics frozen, SGD 0.01, cosine, 10 epochs, no weight decay",
        "zoo (a quick check of what the released features know about your classes)",
        dict(pretrained=True, freeze="backbone", epochs=10, optimizer="sgd", lr=0.01, momentum=0.9,
             weight_decay=0.0, schedule="cosine", warmup_epochs=0.0, clip_grad=None, head_lr_mult=1.0,
             bias_lr_mult=1.0)),
    "small-from-scratch": Recipe(
        "the demo's: the model's small bench network (ResNet-18 or a shallow trunk, its bench clip length) at "
        "32 px from scratch, AdamW 1e-3, wd 1e-4, 1 warmup epoch, cosine, 6 epochs, batch 8; learns SynthMotion "
        "in CPU minutes",
        "zoo demo / zoo compare",
        dict(pretrained=None, epochs=6, batch_size=8, optimizer="adamw", lr=1e-3, weight_decay=1e-4,
             schedule="cosine", warmup_epochs=1.0, clip_grad=20.0, freeze="none", head_lr_mult=1.0,
             bias_lr_mult=1.0),
        for_model=_bench_network),
}


def recipe_values(name: str, model: str) -> Dict[str, Any]:
    """The config values of recipe ``name`` for ``model``."""
    if name not in RECIPES:
        import difflib

        close = difflib.get_close_matches(name, RECIPES, n=3)
        raise UsageError(f"unknown recipe {name!r}" + (f"; did you mean {', '.join(close)}?" if close else "")
                         + f" (recipes: {', '.join(RECIPES)})")
    recipe = RECIPES[name]
    return {**recipe.values, **recipe.for_model(model)}
