"""Model families. Every module here not starting with ``_`` is imported, so each family's
builders are registered as soon as ``zoo`` is imported, whatever the user imports."""
import importlib
import pkgutil

from ._builder import build, build_pretrained, build_with_checkpoint, instantiate
from ._checkpoint_io import first_line, read_checkpoint, read_weights, register_checkpoint_reader
from ._checks import check_counts, check_input
from ._contract import VideoModel
from ._identity import checkpoint_identity, peek_identity, zoo_checkpoint
from ._loading import (CheckpointMismatch, LoadReport, classifier_size, compare_state_dict, load_state_dict_checked,
                       unwrap_state_dict)
from ._resolve import Spec, release_of_files, resolve
from ._categories import categories, categories_source, label_sets
from ._export import export_forms, int8_passthroughs, register_export_form, register_int8_passthrough
from ._hub import (MIRROR_ENV, CacheError, HashMismatch, WeightsUnavailable, cached_files, fetch_files, import_files,
                   weights_dir)
from ._inflate import inflate_2d, inflate_weight
from ._info import IMAGENET_MEAN, IMAGENET_STD, BenchPreset, ModelInfo, Result, Weights
from ._registry import (bench_preset, create_model, get_entry, is_model, list_models, list_weights, model_aliases,
                        model_info, model_weights, register_model, weights_info)

__all__ = ["build", "resolve", "Spec", "VideoModel", "instantiate", "release_of_files", "compare_state_dict",
           "register_checkpoint_reader", "build_with_checkpoint", "CheckpointMismatch", "check_counts", "first_line", "build_pretrained", "zoo_checkpoint", "checkpoint_identity",
           "list_weights", "weights_info", "categories", "categories_source", "label_sets", "export_forms", "register_export_form", "int8_passthroughs", "register_int8_passthrough", "peek_identity", "unwrap_state_dict", "MIRROR_ENV", "CacheError", "HashMismatch",
           "WeightsUnavailable", "cached_files", "fetch_files", "import_files", "weights_dir", "read_checkpoint", "read_weights", "load_state_dict_checked",
           "classifier_size", "check_input", "LoadReport", "IMAGENET_MEAN", "IMAGENET_STD", "inflate_2d", "inflate_weight", "ModelInfo", "Result",
           "Weights", "BenchPreset", "register_model", "create_model", "get_entry", "is_model", "list_models",
           "model_info", "model_weights", "bench_preset", "model_aliases"]

for _m in pkgutil.iter_modules(__path__):
    if not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")
