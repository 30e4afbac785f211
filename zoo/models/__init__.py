"""Model families. Every module here not starting with ``_`` is imported, so each family's
builders are registered as soon as ``zoo`` is imported, whatever the user imports."""
import importlib
import pkgutil

from ._builder import LoadReport, build, check_input, read_checkpoint
from ._info import ModelInfo, Result
from ._registry import create_model, is_model, list_models, model_info, register_model

for _m in pkgutil.iter_modules(__path__):
    if not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")
