"""Evaluation harness and training loop shared by every model.

    from zoo.engine import evaluate, train, TrainConfig
"""
from .._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("atomic_save", "load_checkpoint"), ".checkpoint"),
    **dict.fromkeys(("TrainConfig", "apply_overrides", "load_config", "parse_views", "AGGREGATIONS",
                     "TEMPORAL_ORDERS"), ".config"),
    **dict.fromkeys(("EvalResult", "evaluate", "format_table", "load_eval", "reaggregate", "save_eval"), ".harness"),
    **dict.fromkeys(("aggregate_views", "compute_metrics"), ".metrics"),
    **dict.fromkeys(("build_checked", "check_clips_fit"), ".prepare"),
    "train": ".training",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
