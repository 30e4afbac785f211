"""The fast path's numerics on a trained bench network: fp32 logits against eager, and bf16
top-1 agreement with fp32 over the val split plus a held-out SynthMotion set (another seed,
never trained on), with the probability gap of every video that flips."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import torch

__all__ = ["fast_path_numerics", "top1_agreement", "heldout_sets", "HELDOUT_SEED_OFFSET", "NEAR_TIE"]

HELDOUT_SEED_OFFSET = 1  # the held-out set is SynthMotion drawn with seed + this: clips no bench network sees
NEAR_TIE = 0.01  # fp32 top-1 minus top-2 probability below which a video counts as near-tied


def fast_path_numerics(model, val, eager_logits: torch.Tensor, heldout: Sequence = ()) -> Dict[str, Any]:
    """`zoo.optimize` on a trained model: the fp32 fast path's max |Δlogit| over ``val`` relative to
    the eager logits' scale, and the bf16 fast path's per-video top-1 agreement with the fp32 one over
    ``val`` and the ``heldout`` datasets, with the fp32 top-1/top-2 probability gap of each video
    that flips (``bf16_flip_gaps``) and the share of videos within `NEAR_TIE` of a tie."""
    from ..engine import evaluate
    from ..inference import optimize

    # each fast path built once (as `evaluate(optimize=True)` builds it) and run over every dataset
    was_training = model.training
    fast_paths = optimize(model.eval(), torch.float32), optimize(model, torch.bfloat16)
    model.train(was_training)
    fast32, fast16 = ([evaluate(fast, dataset, progress=False).view_logits for dataset in (val, *heldout)]
                      for fast in fast_paths)
    rel = (fast32[0] - eager_logits).abs().max() / eager_logits.abs().max().clamp_min(1e-12)
    agreement = top1_agreement(torch.cat(fast32), torch.cat(fast16))
    return {"bf16_top1_agreement": agreement["top1_agreement"], "bf16_agreement_videos": agreement["videos"],
            "bf16_flip_gaps": agreement["flip_gaps"], "near_tie_fraction": agreement["near_tie_fraction"],
            "fp32_max_rel_dlogit": float(rel)}


def top1_agreement(reference: torch.Tensor, other: torch.Tensor) -> Dict[str, Any]:
    """Per-video top-1 agreement of ``other``'s view logits ``[videos, views, classes]`` with
    ``reference``'s, views aggregated as the harness does; the reference's top-1/top-2 probability
    gap of every video that flips, and the share of videos within `NEAR_TIE` of a tie."""
    prob = _video_probs(reference)
    top2 = prob.topk(2, dim=-1).values
    gaps = top2[:, 0] - top2[:, 1]
    flips = _video_probs(other).argmax(-1) != prob.argmax(-1)
    return {"top1_agreement": round(1 - float(flips.float().mean()), 4), "videos": len(flips),
            "flip_gaps": sorted(round(float(g), 5) for g in gaps[flips]),
            "near_tie_fraction": round(float((gaps < NEAR_TIE).float().mean()), 4)}


def heldout_sets(heldout: Optional[str], info) -> List:
    """Every clip of the held-out SynthMotion directory ``heldout`` (both of its splits), or none."""
    from ..data import build_dataset

    return [build_dataset(heldout, info, split) for split in ("val", "train")] if heldout else []


def _video_probs(view_logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities per video, views aggregated as the harness does by default (prob-mean)."""
    return view_logits.softmax(-1).mean(1)
