"""Package attributes that import their module on first use, so importing a package (and
``zoo --help``) stays cheap: ``__getattr__, __dir__ = lazy_exports(__name__, {"name": ".module"})``."""
import importlib
import sys


def lazy_exports(package: str, exports: dict):
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps a public name to the module
    (relative to ``package``) that defines it; a resolved name is cached in the package."""

    def __getattr__(name):
        if name in exports:
            value = getattr(importlib.import_module(exports[name], package), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
