"""Whose fault: the errors that are the user's to fix, under one base.

A `ZooError` says what is wrong and how to fix it in one line; the command line prints that line
and exits with code 2 (``ZOO_DEBUG=1`` prints the traceback too). Any other exception is a bug in
zoo: the command line shows its traceback and asks for a report with ``zoo env``.

Each kind also derives from the built-in exception it replaces, so ``except ValueError`` (or
``KeyError``, ``FileNotFoundError``) in user code keeps catching it.
"""
from __future__ import annotations

__all__ = ["ZooError", "UsageError", "UnknownName", "UnknownOption", "InputNotFound", "BadData", "BadCheckpoint",
           "OutputError", "Unavailable", "MissingDependency"]


class ZooError(Exception):
    """A mistake or a condition the user fixes (bad arguments, data, files, paths, network)."""


class UsageError(ZooError, ValueError):
    """Arguments, options or an input tensor that do not fit (the Python API's or the command line's)."""


class UnknownName(ZooError, KeyError):
    """A model, weights tag, recipe or other name that is not registered (the message offers close ones)."""

    def __str__(self) -> str:  # KeyError quotes its message; this one reads as a sentence
        return str(self.args[0]) if self.args else ""


class InputNotFound(ZooError, FileNotFoundError):
    """A file or directory the user named does not exist."""


class BadData(ZooError, ValueError):
    """A dataset, list or label file, or a video, that cannot be used as it is."""


class BadCheckpoint(ZooError, ValueError):
    """A checkpoint that cannot be read safely, or does not fit the model built."""


class OutputError(ZooError, ValueError):
    """An output location that cannot be created or written (found before the work starts)."""


class UnknownOption(UsageError, TypeError):
    """An argument or option a function does not take, or one of the wrong type."""


class Unavailable(ZooError):
    """Something zoo must fetch that it cannot have now (offline, a server that does not answer,
    a file that must be fetched by hand)."""


class MissingDependency(Unavailable, ImportError):
    """An optional library a feature needs is not installed (the message names the extra)."""
