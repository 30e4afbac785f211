"""Package attributes that import their module on first use, so importing a package (and
``zoo --help``) stays cheap: ``__getattr__, __dir__ = lazy_exports(__name__, {"name": ".module"})``."""
import importlib
import importlib.util
import sys


def lazy_exports(package: str, exports: dict):
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps a public name to the module
    (relative to ``package``) that defines it; a resolved name is cached in the package. Other
    names resolve to the package's submodules (``zoo.models``), imported on first use."""

    def __getattr__(name):
        if name in exports:
            value = getattr(importlib.import_module(exports[name], package), name)
            setattr(sys.modules[package], name, value)
            return value
        if not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}") is not None:
            return importlib.import_module(f".{name}", package)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
