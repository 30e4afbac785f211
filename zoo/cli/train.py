"""``zoo train``: train or fine-tune a model (one process, or DDP under torchrun)."""
from __future__ import annotations

from . import UsageError

__all__ = ["register"]

# explicit flags -> config keys (all optional: unset flags leave the YAML/default value)
_FLAGS = ("data", "val_data", "data_root", "out", "weights", "epochs", "lr", "batch_size", "frames", "size",
          "workers", "seed", "amp", "optimizer", "schedule", "on_error", "device")


def cmd_train(args) -> int:
    from ..engine import distributed as dist_utils
    from ..engine.config import TrainConfig, apply_overrides, load_config
    from ..engine.harness import format_table
    from ..engine.training import train
    from ..models import model_info
    from ._options import data_error_types

    cfg = load_config(args.config, TrainConfig())
    if args.model:
        cfg.model = args.model
    for key in _FLAGS:
        value = getattr(args, key)
        if value is not None:
            setattr(cfg, key, value)
    if args.no_progress:
        cfg.progress = False
    apply_overrides(cfg, args.set or [])
    cfg.validate()
    model_info(cfg.model)  # unknown name: KeyError with close matches, before any data is read
    try:
        result = train(cfg, resume=args.resume)
    except data_error_types() as e:
        raise UsageError(str(e).replace("on_error='skip'", "--on-error skip")) from None
    if dist_utils.is_main_process():
        print(format_table({cfg.model: result["eval"]}))
        print(f"run directory: {result['out']} (config.yaml, last.pt, model.pt, history.json, eval/)")
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
                    "--resume continues from it exactly. Launch with `torchrun --nproc_per_node=N -m zoo train "
                    "...` for distributed data parallel training.")
    p.add_argument("model", nargs="?", help="registered model name (or `model:` in --config)")
    p.add_argument("--config", help="YAML run config (read with yaml.safe_load)")
    p.add_argument("--data", help="training data spec")
    p.add_argument("--val-data", help="validation data spec (default: --data, split val)")
    p.add_argument("--data-root", help="directory that relative video paths are relative to")
    p.add_argument("--out", help="run directory (default runs/MODEL)")
    p.add_argument("--weights", help="fine-tune from this checkpoint (the classifier is re-initialised for the "
                                     "data's number of classes)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float, help="base learning rate (per batch of batch_size x processes)")
    p.add_argument("--batch-size", type=int, help="clips per process and step")
    p.add_argument("--frames", type=int, help="frames per clip (segments for TSN/TSM/PAN)")
    p.add_argument("--size", type=int, help="crop size in pixels")
    p.add_argument("--optimizer", choices=("sgd", "adamw"))
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
