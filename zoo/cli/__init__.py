"""The ``zoo`` command line. Each module in this package that defines
``register(subparsers)`` adds its sub-command(s); every command handler returns an exit code.

Errors a user can fix (`zoo.ZooError`: bad names, paths, options, data, an offline download) are
printed as one line, exit code 2 (``ZOO_DEBUG=1`` prints their traceback too). Any other exception
is a bug in zoo: its traceback is shown, with a request to report it with ``zoo env``'s output.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import signal
import sys
import threading
import traceback
from typing import List, Optional

from .._errors import UsageError, ZooError
from .._files import USER_ERRNOS

__all__ = ["main", "UsageError", "DEBUG_ENV"]

DEBUG_ENV = "ZOO_DEBUG"


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
    except ZooError as e:
        return _user_error(args.command, e)
    except OSError as e:  # the OS refused a write (space, limits, permissions): the user's to fix
        if e.errno not in USER_ERRNOS:
            _report_bug(args.command)
            raise
        return _user_error(args.command, e)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:
        _report_bug(args.command)
        raise


def _user_error(command: str, e: BaseException) -> int:
    if os.environ.get(DEBUG_ENV, "").strip() not in ("", "0"):
        traceback.print_exc()
    print(f"zoo {command}: error: {e}", file=sys.stderr)
    return 2


def _report_bug(command: str) -> None:
    print(f"zoo {command}: internal error, a bug in zoo (traceback below): please report it with the command, "
          f"the traceback and the output of `zoo env`", file=sys.stderr)
