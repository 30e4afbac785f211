"""zoo: video action-recognition models behind one registry.

    import zoo
    model = zoo.build("slowfast_r50", pretrained=True)     # released weights, class names in model.categories
    model = zoo.build("tsm_r50", weights="kinetics400", num_classes=10)  # fine-tune: a new classifier
    spec = zoo.resolve("tsm_r50", pretrained="kinetics400_16f")  # the options, protocol, weights, classes; no build
    model = zoo.build(spec)                                 # spec.info: the input protocol the data pipeline reads
    zoo.list_models("pan_*"), zoo.model_info("tsm_r50"), zoo.list_weights("tsm*"), zoo.weights_info("tsm_r50.sthv2")

Mistakes that are the user's to fix raise `zoo.ZooError` (kinds: `UsageError`, `UnknownName`,
`InputNotFound`, `BadData`, `BadCheckpoint`, `OutputError`, `Unavailable`; each also a ValueError,
KeyError, FileNotFoundError or OSError as before). The names below load on first use, so ``import
zoo`` (and ``zoo --help``) import no torch.
"""
from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    **dict.fromkeys(("build", "resolve", "Spec", "VideoModel", "list_models", "model_info", "is_model", "register_model", "ModelInfo", "Result",
                     "LoadReport", "inflate_2d", "inflate_weight", "list_weights", "weights_info", "Weights"), ".models"),
    "optimize": ".inference",
    **dict.fromkeys(("ZooError", "UsageError", "UnknownName", "InputNotFound", "BadData", "BadCheckpoint", "OutputError",
                     "Unavailable"), "._errors"),
}
__all__ = [*_EXPORTS, "__version__"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
