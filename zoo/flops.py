"""FLOP and parameter counts with fvcore.

Convention (fvcore, as the TSM/PAN/SlowFast papers): one fused multiply-add counts as one
FLOP, so the figures are MACs. Ops fvcore has no formula for (the temporal shift, max-pool,
elementwise add/mul, norms) count zero; that matches how the reference numbers were made.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn

__all__ = ["FlopReport", "count_flops", "count_params", "FLOP_CONVENTION"]

FLOP_CONVENTION = "fvcore: 1 multiply-add = 1 FLOP (i.e. MACs); ops without a formula count 0"


@dataclass
class FlopReport:
    total: int
    input_shape: tuple
    table: str
    by_operator: dict

    @property
    def gflops(self) -> float:
        return self.total / 1e9


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: Sequence[int], *, table_depth: int = 3) -> FlopReport:
    """Count FLOPs of ``model`` on one zero input of ``input_shape`` (batch included), in eval mode."""
    with warnings.catch_warnings():
        # fvcore scripts helpers with torch.jit.script at import, which torch now deprecates: not the user's concern
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
        from fvcore.nn import FlopCountAnalysis, flop_count_table

    was_training = model.training
    model.eval()
    x = torch.zeros(*input_shape)
    try:
        with torch.no_grad():
            analysis = FlopCountAnalysis(model, (x,))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            logging.getLogger("fvcore").setLevel(logging.ERROR)
            total = analysis.total()
            table = flop_count_table(analysis, max_depth=table_depth)
            by_op = dict(analysis.by_operator())
    finally:
        model.train(was_training)
    return FlopReport(total=total, input_shape=tuple(input_shape), table=table, by_operator=by_op)
