"""The training loop: SGD/AdamW, warmup + cosine/step schedule, gradient clipping, label
smoothing, autocast, DDP under ``torchrun``, periodic evaluation with the harness, atomic
checkpoints and exact resume.

Resume is exact at epoch boundaries: the checkpoint holds the model, optimizer, scheduler,
(grad scaler,) epoch, history and every rank's RNG states, and the data order of an epoch is a
function of (seed, epoch) only, so a run killed and resumed ends with the same weights and
metrics as one that never stopped, provided it resumes under the same conditions: the same config
(``deterministic: true``, the same ``workers``), torch version, threads, processes and device
(`run_conditions`, saved in the checkpoint; a resume under others warns, naming them).
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, DistributedSampler

from .._errors import BadData, InputNotFound, UsageError
from . import distributed as dist_utils
from .._files import clean_directory, prepare_output_dir
from .checkpoint import atomic_save, atomic_write_text, get_rng_state, load_checkpoint, set_rng_state
from .config import TrainConfig, dump_config, parse_views
from .curves import TensorBoardLog, plot_curves
from .finetune import VideoMixup, freeze, param_groups, set_train_mode
from .harness import EvalResult, evaluate, save_eval
from ..models import Spec, build, resolve, zoo_checkpoint

__all__ = ["train", "build_optimizer", "lr_factor", "seed_everything", "training_spec", "run_conditions", "LAST",
           "FINAL_WEIGHTS", "CURVES", "SKIPPED"]

LAST = "last.pt"  # full training state, rewritten atomically after every epoch
FINAL_WEIGHTS = "model.pt"  # zoo checkpoint (state dict + identity): zoo.build(name, weights=...) loads it
CURVES = "curves.png"  # loss, accuracy and learning rate per epoch, redrawn after every epoch
SKIPPED = "skipped.csv"  # unreadable videos skipped under on_error=skip, with their reasons
# config keys that may change between an interrupted run and its resumption (not `workers`: with none,
# augmentation draws from the main process's generator; with some, from per-worker seeds)
_RESUME_FREE = {"epochs", "out", "progress", "device", "eval_batch_size", "log_every"}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _log(msg: str) -> None:
    if dist_utils.is_main_process():
        print(msg, flush=True)


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum, TSM recipe), AdamW or RMSprop (TensorFlow's form, MoViNet's recipe) over the trainable
    parameters; biases and norm weights get
    no weight decay; classifier and bias learning-rate multipliers (`zoo.engine.finetune.param_groups`)."""
    groups = param_groups(model, cfg.lr, cfg.weight_decay, no_decay_bias_norm=cfg.no_decay_bias_norm,
                          head_lr_mult=cfg.head_lr_mult, bias_lr_mult=cfg.bias_lr_mult)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if cfg.optimizer == "rmsprop":  # weight decay as an L2 term on the gradient, as TensorFlow's regularizers
        from timm.optim import RMSpropTF

        return RMSpropTF(groups, lr=cfg.lr, alpha=cfg.rmsprop_decay, eps=cfg.rmsprop_eps, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def lr_factor(it: int, iters_per_epoch: int, cfg: TrainConfig) -> float:
    """Multiplier of the base lr at iteration ``it``: linear warmup, then cosine/step/constant."""
    epoch = it / iters_per_epoch
    warmup_iters = cfg.warmup_epochs * iters_per_epoch
    if it < warmup_iters:
        return (it + 1) / warmup_iters
    if cfg.schedule == "cosine":
        span = max(cfg.epochs - cfg.warmup_epochs, 1e-8)
        progress = min((epoch - cfg.warmup_epochs) / span, 1.0)
        floor = cfg.min_lr / cfg.lr
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    if cfg.schedule == "step":
        return cfg.lr_gamma ** sum(epoch >= s for s in cfg.lr_steps)
    return 1.0


def _autocast(cfg: TrainConfig, device: torch.device):
    if cfg.amp == "none":
        return torch.autocast(device.type, enabled=False)
    if cfg.amp == "fp16" and device.type != "cuda":
        raise UsageError("amp=fp16 needs a GPU; use amp=bf16 on CPU")
    return torch.autocast(device.type, dtype=torch.bfloat16 if cfg.amp == "bf16" else torch.float16)


def _val_summary(m: Dict) -> Dict:
    keys = ("num_videos", "num_skipped", "num_views", "aggregation", "clip_top1", "video_top1", "video_top5",
            "mean_class_accuracy", "mAP")
    return {k: m[k] for k in keys if k in m}


def train(cfg: TrainConfig, *, resume: Union[None, bool, str] = None) -> Dict[str, Any]:
    """Run (or resume) a training described by ``cfg``; returns the history and final metrics.

    Writes to ``cfg.out``: ``config.yaml`` (resolved), ``last.pt``, ``history.json``, ``curves.png``
    (and ``tensorboard/`` with the optional extra), ``skipped.csv`` (if videos were skipped),
    ``model.pt`` (final weights), ``classes.txt`` and the final evaluation under ``eval/``.
    """
    cfg.validate()
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.backends.cudnn.benchmark)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    try:
        return _train(cfg, resume)
    finally:  # leave the process as it was (train() is also called from tests and notebooks)
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.benchmark = previous[2]


def _train(cfg: TrainConfig, resume) -> Dict[str, Any]:
    from ..data import build_dataset, collate

    distributed = dist_utils.init_distributed()
    rank, world = dist_utils.get_rank(), dist_utils.get_world_size()
    device = dist_utils.default_device(cfg.device)
    out = cfg.out
    if dist_utils.is_main_process():
        # before any decoding: a run whose results cannot be saved does not start
        removed = prepare_output_dir(out) + clean_directory(os.path.join(out, "eval"))
        if removed:
            _log(f"removed {len(removed)} temporary file(s) a killed run left in {out}: {', '.join(removed)}")
    seed_everything(cfg.seed + rank)

    spec = training_spec(cfg)
    info = spec.info
    train_set = build_dataset(cfg.data, info, "train", train=True, on_error=cfg.on_error, root=cfg.data_root,
                              fold=cfg.split)
    val_set = build_dataset(cfg.val_data or cfg.data, info, "val", train=False, on_error=cfg.on_error,
                            root=cfg.data_root, fold=None if cfg.val_data else cfg.split)
    class_names = list(train_set.class_names)
    if list(val_set.class_names) != class_names:
        raise BadData(f"training and validation label maps differ ({len(class_names)} vs "
                         f"{len(val_set.class_names)} classes): they must list the same classes in the same order")
    shared = {r.path for r in getattr(train_set, "records", [])} & {r.path for r in getattr(val_set, "records", [])}
    if shared:
        raise BadData(f"training and validation data share {len(shared)} videos (e.g. {sorted(shared)[0]}): "
                         f"pass --val-data (a list file or a folder without train/val splits has one split)")
    if len(train_set) == 0:
        raise BadData(f"no training videos in {cfg.data!r}")

    model = build(spec.with_classes(len(class_names))).to(device)
    if spec.has_weights:
        _log(f"fine-tuning from {spec.weights_label()}: {model.load_report}")
    frozen = freeze(model, cfg.freeze)
    if cfg.freeze != "none":
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        _log(f"freeze {cfg.freeze}: {trainable:,} of {sum(p.numel() for p in model.parameters()):,} parameters "
             f"train, {len(frozen)} norm layers keep their statistics")
    mixup = VideoMixup(cfg.mixup, cfg.cutmix, cfg.label_smoothing, len(class_names)) if cfg.mixup or cfg.cutmix else None
    core = model
    if distributed:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    loader_gen = torch.Generator()
    loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.workers,
                        collate_fn=collate, generator=loader_gen, drop_last=False,
                        pin_memory=device.type == "cuda", persistent_workers=False)
    iters_per_epoch = max(len(loader), 1)
    optimizer = build_optimizer(core, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, iters_per_epoch, cfg))
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp == "fp16" and device.type == "cuda")
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

    last_path = os.path.join(out, LAST)
    start_epoch, history, skipped = 0, [], {}
    conditions = run_conditions(world, device)
    if resume:
        path = resume if isinstance(resume, str) else last_path
        if not os.path.isfile(path):
            raise InputNotFound(f"nothing to resume: {path!r} does not exist (drop --resume to start afresh)")
        ckpt = load_checkpoint(path)
        changed = [k for k, v in ckpt.get("config", {}).items()
                   if k not in _RESUME_FREE and cfg.to_dict().get(k) != v]
        saved = ckpt.get("conditions", {})
        changed += [f"{k} {saved[k]} -> {v}" for k, v in conditions.items() if k in saved and saved[k] != v]
        if changed:
            _log(f"warning: resuming with other settings or conditions than the run was saved with "
                 f"({'; '.join(changed)}): the result will differ from an uninterrupted run (exact resume needs "
                 f"the same settings, torch version, threads, processes and device)")
        core.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if "scaler" in ckpt:
            scaler.load_state_dict(ckpt["scaler"])
        start_epoch, history = int(ckpt["epoch"]), list(ckpt.get("history", []))
        skipped = dict(ckpt.get("skipped", {}))
        rng = ckpt.get("rng", [])
        if len(rng) == world:
            set_rng_state(rng[rank])
        elif "processes" not in saved:  # (the warning above names the process counts)
            _log(f"warning: checkpoint saved by {len(rng)} process(es), resuming with {world}: RNG states not restored")
        _log(f"resumed from {path} after epoch {start_epoch}")
    if dist_utils.is_main_process():
        os.makedirs(out, exist_ok=True)
        atomic_write_text(os.path.join(out, "config.yaml"), dump_config(cfg))
        atomic_write_text(os.path.join(out, "classes.txt"), "\n".join(class_names) + "\n")
    _log(f"training {cfg.model} on {len(train_set)} videos ({len(class_names)} classes), "
         f"{world} process(es) x {conditions['threads']} thread(s) on {device}, {cfg.epochs} epochs, "
         f"{iters_per_epoch} iterations/epoch; out: {out}")

    last_eval: Optional[EvalResult] = None
    board = TensorBoardLog(out) if dist_utils.is_main_process() else None
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        sampler.set_epoch(epoch)
        loader_gen.manual_seed(cfg.seed * 100_003 + epoch)
        stats, errors = _train_epoch(model, loader, optimizer, scheduler, scaler, criterion, cfg, device, epoch,
                                     frozen=frozen, mixup=mixup)
        for e in errors:
            skipped.setdefault(e["path"], {**e, "epochs": []})["epochs"].append(epoch + 1)
        entry = {"epoch": epoch + 1, "lr": _base_lr(optimizer), **stats}
        due = cfg.eval_every > 0 and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs)
        if due or epoch + 1 == cfg.epochs:
            last_eval = evaluate(core, val_set, batch_size=cfg.eval_batch_size, num_workers=cfg.workers,
                                 agg=cfg.agg, seed=cfg.seed, device=device, progress=cfg.progress,
                                 amp=None if cfg.amp == "none" else cfg.amp, desc=f"eval epoch {epoch + 1}")
            entry["val"] = _val_summary(last_eval.metrics)
        entry["seconds"] = round(time.perf_counter() - t0, 2)
        history.append(entry)
        rng = dist_utils.all_gather_object(get_rng_state())
        if dist_utils.is_main_process():
            state = {"model": core.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "rng": rng, "history": history,
                     "config": cfg.to_dict(), "class_names": class_names, "skipped": skipped,
                     "conditions": conditions}
            if scaler.is_enabled():
                state["scaler"] = scaler.state_dict()
            atomic_save(state, last_path)
            atomic_write_text(os.path.join(out, "history.json"), json.dumps(history, indent=1) + "\n")
            _write_skipped(skipped, os.path.join(out, SKIPPED))
            plot_curves(history, os.path.join(out, CURVES))
            board.log(entry)
        dist_utils.barrier()
        val = entry.get("val")
        _log(f"epoch {epoch + 1}/{cfg.epochs}  loss {stats['train_loss']:.4f}  train top1 {stats['train_top1']:.1f}"
             + (f"  val top1 {val['video_top1']:.1f}" if val and "video_top1" in val else "")
             + (f"  skipped {stats['skipped']}" if stats["skipped"] else "") + f"  ({entry['seconds']:.1f}s)")

    if board is not None:
        board.close()
    if last_eval is None:  # resumed after the last epoch: evaluate the final weights again
        last_eval = evaluate(core, val_set, batch_size=cfg.eval_batch_size, num_workers=cfg.workers,
                             agg=cfg.agg, seed=cfg.seed, device=device, progress=cfg.progress)
    last_eval.meta["model"] = cfg.model
    if dist_utils.is_main_process():
        atomic_save(zoo_checkpoint(core, categories=class_names), os.path.join(out, FINAL_WEIGHTS))
        save_eval(last_eval, os.path.join(out, "eval"))
        atomic_write_text(os.path.join(out, "metrics.json"),
                          json.dumps({"model": cfg.model, "epochs": cfg.epochs, "conditions": conditions,
                                      "val": _val_summary(last_eval.metrics)}, indent=1) + "\n")
    dist_utils.barrier()
    return {"out": out, "history": history, "eval": last_eval, "model": core, "info": core.info,
            "class_names": class_names}


def _train_epoch(model, loader, optimizer, scheduler, scaler, criterion, cfg, device, epoch, *, frozen=(),
                 mixup: Optional[VideoMixup] = None) -> Tuple[Dict[str, float], List[Dict[str, Any]]]:
    """One epoch; returns its statistics and the videos skipped as unreadable (every process's)."""
    set_train_mode(model, list(frozen))
    loss_sum, correct, seen, errors = 0.0, 0, 0, []
    soft_criterion = nn.CrossEntropyLoss()  # mixup targets carry the label smoothing already
    main = dist_utils.is_main_process()
    bar = None
    if cfg.progress and main:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(loader), desc=f"epoch {epoch + 1}", unit="batch", dynamic_ncols=True, leave=False,
                   disable=None)  # no bar when the output is not a terminal (logs, CI)
    lines = main and cfg.log_every > 0 and (bar is None or bar.disable)
    t0 = time.perf_counter()
    for step, batch in enumerate(loader, 1):
        errors += [{k: e[k] for k in ("path", "label", "error")} for e in batch.get("errors", [])]
        video = batch.get("video")
        if video is None or video.shape[0] == 0:
            # every item of this batch was unreadable; the step still counts for the schedule
            scheduler.step()
            if bar is not None:
                bar.update()
            continue
        b, v = video.shape[:2]
        x = video.reshape(b * v, *video.shape[2:]).to(device, non_blocking=True)
        y = torch.as_tensor(batch["label"]).long().repeat_interleave(v).to(device)
        target = y
        if mixup is not None:
            x, target = mixup(x, y)
        with _autocast(cfg, device):
            logits = model(x)
            loss = (criterion if mixup is None else soft_criterion)(logits.float(), target)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.clip_grad:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        loss_sum += float(loss.detach()) * len(y)
        correct += int((logits.detach().argmax(-1) == y).sum())
        seen += len(y)
        if bar is not None:
            bar.update()
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", lr=f"{_base_lr(optimizer):.2e}")
        if lines and (step % cfg.log_every == 0 or step == len(loader)):
            print(f"  epoch {epoch + 1} step {step}/{len(loader)}  loss {loss_sum / seen:.4f}  "
                  f"lr {_base_lr(optimizer):.2e}  ({time.perf_counter() - t0:.0f}s)", flush=True)
    if bar is not None:
        bar.close()
    totals = dist_utils.all_gather_object((loss_sum, correct, seen, errors))
    loss_sum, correct, seen = (sum(t[i] for t in totals) for i in range(3))
    errors = [e for t in totals for e in t[3]]
    return ({"train_loss": loss_sum / max(seen, 1), "train_top1": 100.0 * correct / max(seen, 1),
             "train_clips": seen, "skipped": len(errors)}, errors)


def _write_skipped(skipped: Dict[str, Dict[str, Any]], path: str) -> None:
    """The videos training skipped as unreadable (``--on-error skip``): path, label, reason, epochs."""
    if not skipped:
        return
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["path", "label", "error", "epochs"])
    for video, e in sorted(skipped.items()):
        w.writerow([video, e["label"], e["error"], " ".join(map(str, e["epochs"]))])
    atomic_write_text(path, buf.getvalue())


def _base_lr(optimizer) -> float:
    """The learning rate without the group's multiplier (what the schedule sets)."""
    group = optimizer.param_groups[0]
    return group["lr"] / group.get("lr_mult", 1.0)


def run_conditions(world: int, device: torch.device) -> Dict[str, Any]:
    """What besides the config decides a run's numbers bit for bit: torch version, processes, threads,
    device (the CPU's vector kernels or the GPU) and the determinism switches. Saved in ``last.pt``;
    resuming under others warns, naming the differences."""
    conditions = {"torch": str(torch.__version__), "processes": world, "threads": torch.get_num_threads(),
                  "device": device.type, "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
                  "cudnn_benchmark": torch.backends.cudnn.benchmark}
    if device.type == "cpu":
        conditions["cpu_kernels"] = torch.backends.cpu.get_cpu_capability()
    else:
        conditions["gpu"] = torch.cuda.get_device_name(device)
    return conditions


def training_spec(cfg: TrainConfig) -> Spec:
    """The model of a training run, resolved (`zoo.resolve`): its options, the released weights or
    checkpoint it starts from (with their options and input protocol), the clip length and crop."""
    views = parse_views(cfg.eval_views) if cfg.eval_views else None
    args = dict(cfg.model_args)
    if cfg.dropout is not None:
        args["dropout"] = cfg.dropout
    return resolve(cfg.model, weights=cfg.weights, pretrained=cfg.pretrained or None, frames=cfg.frames,
                   size=cfg.size, views=views, **args)
