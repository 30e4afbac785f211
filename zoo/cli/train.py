"""``zoo train``: train or fine-tune a model (one process, or DDP under torchrun)."""
from __future__ import annotations

from . import UsageError

__all__ = ["register", "resolve_config"]

# explicit flags -> config keys (all optional: unset flags leave the YAML/default value)
_FLAGS = ("data", "val_data", "data_root", "out", "weights", "pretrained", "split", "epochs", "lr", "batch_size",
          "frames", "size", "workers", "seed", "amp", "optimizer", "schedule", "on_error", "device", "freeze",
          "head_lr_mult", "bias_lr_mult", "clip_grad", "label_smoothing", "dropout", "mixup", "cutmix", "log_every")


def resolve_config(args):
    """The run's `TrainConfig`: defaults < ``--recipe`` (or ``recipe:`` in the config file) <
    ``--config`` < flags < ``--set``; validated, model and weights tag checked before any data is read."""
    from ..engine.config import TrainConfig, apply_overrides, load_config
    from ..engine.recipes import recipe_values
    from ..engine.training import training_spec

    given = load_config(args.config, TrainConfig())
    recipe, model = args.recipe or given.recipe, args.model or given.model
    cfg = TrainConfig()
    if recipe:
        if not model:
            raise UsageError("--recipe needs the model: zoo train MODEL --recipe NAME")
        for key, value in recipe_values(recipe, model).items():
            setattr(cfg, key, value)
        cfg.recipe = recipe
    cfg = load_config(args.config, cfg)
    if args.model:
        cfg.model = args.model
    if args.weights:  # a checkpoint given on the command line replaces the recipe's released weights
        cfg.pretrained = None
    for key in _FLAGS:
        value = getattr(args, key)
        if value is not None:
            setattr(cfg, key, value)
    if args.no_progress:
        cfg.progress = False
    apply_overrides(cfg, args.set or [])
    cfg.validate()
    training_spec(cfg)  # an unknown model, tag or weights file: one line, before any data is read
    return cfg


def cmd_train(args) -> int:
    from ..engine import distributed as dist_utils
    from ..engine.harness import format_table
    from ..engine.recipes import RECIPES
    from ..engine.training import train
    from ._options import data_error_types

    if args.list_recipes:
        for name, recipe in RECIPES.items():
            print(f"{name}: {recipe.summary}\n    source: {recipe.source}")
        return 0
    cfg = resolve_config(args)
    try:
        result = train(cfg, resume=args.resume)
    except data_error_types() as e:
        raise UsageError(str(e).replace("on_error='skip'", "--on-error skip")) from None
    if dist_utils.is_main_process():
        print(format_table({cfg.model: result["eval"]}))
        print(f"run directory: {result['out']} (config.yaml, last.pt, model.pt, history.json, curves.png, eval/)")
    dist_utils.cleanup()
    return 0


def register(sub):
    p = sub.add_parser(
        "train", help="train or fine-tune a model; DDP under torchrun",
        description="Train MODEL on --data (the training split of a SynthMotion directory, or a list/CSV/JSON "
                    "spec) with the model's train-time sampling and augmentation; evaluate on the validation "
                    "split with the shared harness every --set eval_every=N epochs. Settings come from the "
                    "defaults, then --config run.yaml, then the flags below, then --set KEY=VALUE (any config "
                    "key, e.g. --set lr=0.1 epochs=3 model_args.backbone=resnet18). The resolved config is "
                    "saved as OUT/config.yaml; OUT/last.pt is rewritten atomically after every epoch and "
                    "--resume continues from it exactly; OUT/curves.png is redrawn after every epoch. Launch with "
                    "`torchrun --nproc_per_node=N -m zoo train ...` for distributed data parallel training. A list "
                    "or CSV holds one split: pass --val-data for the validation videos.")
    p.add_argument("model", nargs="?", help="registered model name (or `model:` in --config)")
    p.add_argument("--config", help="YAML run config (read with yaml.safe_load)")
    p.add_argument("--data", help="training data spec")
    p.add_argument("--val-data", help="validation data spec (default: --data, split val)")
    p.add_argument("--data-root", help="directory that relative video paths are relative to")
    p.add_argument("--out", help="run directory (default runs/MODEL)")
    p.add_argument("--weights", help="fine-tune from this checkpoint (the classifier is re-initialised for the "
                                     "data's number of classes)")
    p.add_argument("--pretrained", nargs="?", const=True, default=None, metavar="TAG",
                   help="fine-tune from released weights: a tag (e.g. imagenet, kinetics400; `zoo weights list "
                        "MODEL`) or the model's default; the classifier is re-initialised for the data's classes")
    p.add_argument("--recipe", help="a named recipe (official settings; `--list-recipes`), applied before "
                                    "--config and the flags")
    p.add_argument("--list-recipes", action="store_true", help="print the recipes with their sources and exit")
    p.add_argument("--split", type=int, choices=(1, 2, 3),
                   help="UCF101 / HMDB51 root: train on the official split's train list, evaluate on its test list "
                        "(default 1)")
    p.add_argument("--freeze", choices=("none", "backbone", "bn"),
                   help="backbone: linear probe (only the classifier learns); bn: partial BN (TSN/TSM fine-tuning: "
                        "every BatchNorm but the first frozen, statistics included)")
    p.add_argument("--head-lr-mult", type=float, help="classifier learning-rate multiplier (TSM recipe: 5)")
    p.add_argument("--bias-lr-mult", type=float, help="bias learning-rate multiplier (TSN/TSM recipes: 2)")
    p.add_argument("--clip-grad", type=float, help="gradient-norm clipping (TSM recipe: 20; default 20)")
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--dropout", type=float, help="dropout before the classifier (default: the model's)")
    p.add_argument("--mixup", type=float, help="mixup alpha (timm's Mixup; default 0 = off)")
    p.add_argument("--cutmix", type=float, help="cutmix alpha, one box on every frame (timm's Mixup; default 0 = off)")
    p.add_argument("--log-every", type=int, help="steps between progress lines without a progress bar (default 50)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float, help="base learning rate (per batch of batch_size x processes)")
    p.add_argument("--batch-size", type=int, help="clips per process and step")
    p.add_argument("--frames", type=int, help="frames per clip (segments for TSN/TSM/PAN)")
    p.add_argument("--size", type=int, help="crop size in pixels")
    p.add_argument("--optimizer", choices=("sgd", "adamw", "rmsprop"))  # zoo.engine.config.OPTIMIZERS
    p.add_argument("--schedule", choices=("cosine", "step", "constant"))
    p.add_argument("--amp", choices=("none", "bf16", "fp16"), help="autocast (bf16 works on CPU)")
    p.add_argument("--on-error", choices=("error", "skip"), help="unreadable videos: stop or skip and count them")
    p.add_argument("--workers", type=int, help="data-loading processes")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="cpu, cuda, ... (default: GPU if available)")
    p.add_argument("--set", nargs="+", metavar="KEY=VALUE", help="override any config key (values parsed as YAML)")
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="CKPT",
                   help="continue from OUT/last.pt (or CKPT) exactly where it stopped")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)
