"""Evaluation harness and training loop shared by every model.

    from zoo.engine import evaluate, train, TrainConfig
"""
from .checkpoint import atomic_save, load_checkpoint
from .config import TrainConfig, apply_overrides, load_config, parse_views
from .evaluate import EvalResult, evaluate, format_table, load_eval, reaggregate, save_eval
from .metrics import AGGREGATIONS, aggregate_views, compute_metrics
from .prepare import adjust_info, build_model
from .train import train

__all__ = ["evaluate", "EvalResult", "save_eval", "load_eval", "reaggregate", "format_table", "compute_metrics",
           "aggregate_views", "AGGREGATIONS", "train", "TrainConfig", "load_config", "apply_overrides",
           "parse_views", "adjust_info", "build_model", "atomic_save", "load_checkpoint"]
