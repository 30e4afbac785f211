"""The ``zoo`` command line. Each module in this package that defines
``register(subparsers)`` adds its sub-command(s); every command handler returns an exit code.

Errors a user can fix (bad names, paths, options) are printed as one line, exit code 2.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import pkgutil
import signal
import sys
import threading
from typing import List, Optional

from .._files import USER_ERRNOS, WriteError

__all__ = ["main", "UsageError"]


class UsageError(Exception):
    """A mistake in the command line or its inputs: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo", description="Video action-recognition model zoo: models, data, evaluation, training.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if m.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{m.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


class _Interrupt:
    """SIGINT and SIGTERM raise KeyboardInterrupt once; a signal that comes while the command
    cleans up after the first (joining its threads, flushing its outputs) is ignored."""

    def __init__(self):
        self.received = False

    def __call__(self, signum, frame):
        if not self.received:
            self.received = True
            raise KeyboardInterrupt


@contextlib.contextmanager
def _interruptible(enabled: bool):
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = _Interrupt()
    saved = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, old in saved.items():
            signal.signal(s, old)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        # commands that stream (`set_defaults(interruptible=True)`) end on SIGTERM as on Ctrl-C
        with _interruptible(getattr(args, "interruptible", False)):
            return int(args.func(args) or 0)
    except (UsageError, KeyError, FileNotFoundError, NotADirectoryError, ValueError, TypeError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"zoo {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except OSError as e:  # a write that failed (disk full, file-size limit, permissions): the file and the reason
        if not isinstance(e, WriteError) and e.errno not in USER_ERRNOS:
            raise
        print(f"zoo {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
