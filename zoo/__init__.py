"""zoo: video action-recognition models behind one registry.

    import zoo
    model = zoo.build("tsm_r50", num_classes=10)
    zoo.list_models("pan_*"), zoo.model_info("tsm_r50")
"""
from .models._inflate import inflate_2d, inflate_weight
from .optimize import optimize
from .models import LoadReport, ModelInfo, Result, build, is_model, list_models, model_info, register_model

__version__ = "0.1.0"

__all__ = ["build", "list_models", "model_info", "is_model", "register_model", "ModelInfo", "Result",
           "LoadReport", "optimize", "inflate_2d", "inflate_weight", "__version__"]
