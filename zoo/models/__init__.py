"""Model families. Every module here not starting with ``_`` is imported, so each family's
builders are registered as soon as ``zoo`` is imported, whatever the user imports."""
import importlib
import pkgutil

from ._builder import (LoadReport, build, build_with_checkpoint, check_input, classifier_size,
                       load_state_dict_checked, read_checkpoint, read_weights)
from ._inflate import inflate_2d, inflate_weight
from ._info import BenchPreset, ModelInfo, Result, Weights
from ._registry import (bench_preset, create_model, get_entry, is_model, list_models, model_aliases, model_info,
                        model_weights, register_model)

__all__ = ["build", "build_with_checkpoint", "read_checkpoint", "read_weights", "load_state_dict_checked",
           "classifier_size", "check_input", "LoadReport", "inflate_2d", "inflate_weight", "ModelInfo", "Result",
           "Weights", "BenchPreset", "register_model", "create_model", "get_entry", "is_model", "list_models",
           "model_info", "model_weights", "bench_preset", "model_aliases"]

for _m in pkgutil.iter_modules(__path__):
    if not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")
