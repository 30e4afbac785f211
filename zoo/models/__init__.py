"""Model families. Every module here not starting with ``_`` is imported, so each family's
builders are registered as soon as ``zoo`` is imported, whatever the user imports."""
import importlib
import pkgutil

from ._builder import (CheckpointMismatch, LoadReport, build, check_counts, first_line, build_pretrained, build_with_checkpoint, check_input, checkpoint_identity,
                       classifier_size, load_state_dict_checked, peek_identity, read_checkpoint, read_weights,
                       unwrap_state_dict, zoo_checkpoint)
from ._categories import categories, categories_source, label_sets
from ._export import export_forms, register_export_form
from ._hub import (MIRROR_ENV, CacheError, HashMismatch, WeightsUnavailable, cached_files, fetch_files, import_files,
                   weights_dir)
from ._inflate import inflate_2d, inflate_weight
from ._info import BenchPreset, ModelInfo, Result, Weights
from ._registry import (bench_preset, create_model, get_entry, is_model, list_models, list_weights, model_aliases,
                        model_info, model_weights, register_model, weights_info)

__all__ = ["build", "build_with_checkpoint", "CheckpointMismatch", "check_counts", "first_line", "build_pretrained", "zoo_checkpoint", "checkpoint_identity",
           "list_weights", "weights_info", "categories", "categories_source", "label_sets", "export_forms", "register_export_form", "peek_identity", "unwrap_state_dict", "MIRROR_ENV", "CacheError", "HashMismatch",
           "WeightsUnavailable", "cached_files", "fetch_files", "import_files", "weights_dir", "read_checkpoint", "read_weights", "load_state_dict_checked",
           "classifier_size", "check_input", "LoadReport", "inflate_2d", "inflate_weight", "ModelInfo", "Result",
           "Weights", "BenchPreset", "register_model", "create_model", "get_entry", "is_model", "list_models",
           "model_info", "model_weights", "bench_preset", "model_aliases"]

for _m in pkgutil.iter_modules(__path__):
    if not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")
