"""Classification metrics over saved per-view logits.

Everything here is a pure function of ``view_logits [N, V, K]`` and the labels (``[N]`` class
indices, or ``[N, K]`` multi-hot for multi-label data), so a result can be recomputed or
re-aggregated later from the saved logits alone.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import torch

from .._errors import UsageError
from .config import AGGREGATIONS

__all__ = ["AGGREGATIONS", "aggregate_views", "topk_correct", "confusion_matrix", "per_class_accuracy",
           "average_precision", "mean_average_precision", "compute_metrics", "twin_metrics"]



def _probs(logits: torch.Tensor, multilabel: bool) -> torch.Tensor:
    return logits.sigmoid() if multilabel else logits.softmax(-1)


def aggregate_views(view_logits: torch.Tensor, method: str = "prob-mean", *,
                    multilabel: bool = False) -> torch.Tensor:
    """``[N, V, K]`` per-view logits -> ``[N, K]`` video scores.

    ``prob-mean``: mean of per-view probabilities (softmax, or sigmoid for multi-label);
    ``logit-mean``: mean of the logits; ``max``: per-class maximum of the view probabilities.
    """
    if view_logits.dim() != 3:
        raise UsageError(f"view logits must be [N, V, K], got {list(view_logits.shape)}")
    x = view_logits.double()
    if method == "prob-mean":
        return _probs(x, multilabel).mean(1)
    if method == "logit-mean":
        return x.mean(1)
    if method == "max":
        return _probs(x, multilabel).amax(1)
    raise UsageError(f"unknown aggregation {method!r}; choose one of {', '.join(AGGREGATIONS)}")


def topk_correct(scores: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean ``[N]``: is the label among the ``k`` highest scores (``k`` capped at K)."""
    k = min(k, scores.shape[-1])
    return (scores.topk(k, dim=-1).indices == labels[:, None]).any(-1)


def confusion_matrix(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[K, K]`` counts, rows = true class, columns = predicted class."""
    idx = labels.long() * num_classes + pred.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(cm: torch.Tensor) -> List[Optional[float]]:
    """Recall of each class from a confusion matrix; ``None`` for classes with no sample."""
    support = cm.sum(1)
    return [None if s == 0 else float(cm[i, i]) / float(s) for i, s in enumerate(support.tolist())]


def average_precision(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """Non-interpolated AP of one class: mean precision at the rank of each positive."""
    order = torch.argsort(scores, descending=True, stable=True)
    hits = targets[order].double()
    if hits.sum() == 0:
        return math.nan
    precision = hits.cumsum(0) / torch.arange(1, len(hits) + 1, dtype=torch.float64)
    return float((precision * hits).sum() / hits.sum())


def mean_average_precision(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean AP over the classes that have at least one positive (``targets`` is ``[N, K]`` 0/1)."""
    aps = [average_precision(scores[:, k], targets[:, k]) for k in range(scores.shape[1])]
    aps = [a for a in aps if not math.isnan(a)]
    return sum(aps) / len(aps) if aps else math.nan


def compute_metrics(view_logits: torch.Tensor, labels: torch.Tensor, *, agg: str = "prob-mean",
                    class_names: Optional[Sequence[str]] = None, topk: Sequence[int] = (1, 5)) -> Dict:
    """Clip- and video-level top-k, mean class accuracy, per-class accuracy, confusion matrix, mAP.

    ``labels`` ``[N]`` (single-label) or ``[N, K]`` multi-hot (multi-label: only mAP and the
    aggregated scores make sense, so top-k/confusion are left out). Accuracies are percentages.
    """
    n, v, k = view_logits.shape
    multilabel = labels.dim() == 2
    out: Dict = {"num_videos": n, "num_views": v, "num_classes": k, "aggregation": agg,
                 "multilabel": multilabel}
    if n == 0:
        return out
    scores = aggregate_views(view_logits, agg, multilabel=multilabel)
    if multilabel:
        out["mAP"] = 100.0 * mean_average_precision(scores, labels)
        return out
    labels = labels.long()
    clip_scores = view_logits.reshape(n * v, k).double()
    clip_labels = labels.repeat_interleave(v)
    for kk in topk:
        name = f"top{kk}"
        out[f"clip_{name}"] = 100.0 * topk_correct(clip_scores, clip_labels, kk).double().mean().item()
        out[f"video_{name}"] = 100.0 * topk_correct(scores, labels, kk).double().mean().item()
    pred = scores.argmax(-1)
    cm = confusion_matrix(pred, labels, k)
    per_class = per_class_accuracy(cm)
    present = [a for a in per_class if a is not None]
    out["mean_class_accuracy"] = 100.0 * sum(present) / len(present)
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    out["per_class_accuracy"] = {names[i]: (None if a is None else 100.0 * a) for i, a in enumerate(per_class)}
    out["mAP"] = 100.0 * mean_average_precision(scores, torch.nn.functional.one_hot(labels, k))
    out["confusion_matrix"] = cm.tolist()
    return out


def twin_metrics(confusion: Sequence[Sequence[int]], classes: Sequence[str], twins: Sequence[Sequence[str]]):
    """(pair accuracy, twin accuracy) in %: the share of videos of twinned classes predicted inside
    their own twin pair, and among those the share given the right one of the two (chance 50 %);
    (None, None) when no class has its twin. ``confusion[true][predicted]``."""
    pair_of = {c: tuple(p) for p in twins for c in p}
    idx = {c: i for i, c in enumerate(classes)}
    in_pair = right = 0
    for t, row in enumerate(confusion):
        pair = pair_of.get(classes[t])
        if pair is None:
            continue
        in_pair += sum(row[idx[c]] for c in pair if c in idx)
        right += row[t]
    paired = sum(sum(confusion[idx[c]]) for c in pair_of if c in idx)
    if not paired:
        return None, None
    return 100.0 * in_pair / paired, (100.0 * right / in_pair if in_pair else float("nan"))
