"""Network reads that never hang: every download has a connect and a read timeout, is retried a
bounded number of times with backoff, then fails in one line naming the URL.

- ``ZOO_NET_TIMEOUT``: seconds to wait for a connection and for each read (default 30): a server
  that accepts and never answers, or stalls mid-file, fails after that long.
- ``ZOO_NET_RETRIES``: further attempts after a failure that may pass (a timeout, a reset
  connection, an HTTP 5xx; default 2), waiting 1 s, 2 s, 4 s ... between them. A 4xx answer
  (not found, forbidden) is final at once.

A download lands in a file the caller names (a staging file: `download` never renames into place);
a body shorter than its announced length is an error, not a file.
"""
from __future__ import annotations

import http.client
import os
import socket
import time
import urllib.error
import urllib.request
from typing import Callable, Optional

from ._errors import Unavailable, UsageError

__all__ = ["TIMEOUT_ENV", "RETRIES_ENV", "NetworkError", "net_timeout", "net_retries", "download", "copy_fsspec",
           "fsspec_supports"]

TIMEOUT_ENV = "ZOO_NET_TIMEOUT"
RETRIES_ENV = "ZOO_NET_RETRIES"
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 2
_CHUNK = 1 << 20


class NetworkError(Unavailable, OSError):
    """A download that failed for good: ``url``, ``reason`` (one line) and ``attempts``."""

    def __init__(self, url: str, reason: str, attempts: int):
        self.url, self.reason, self.attempts = url, reason, attempts
        self.detail = reason + (f" ({attempts} attempts)" if attempts > 1 else "")  # without the URL
        super().__init__(f"{url}: {self.detail}")

    def __str__(self) -> str:
        return self.args[0]


def _env_number(name: str, default: float, kind, minimum: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise UsageError(f"{name}={raw!r} must be a number >= {minimum:g}")
    return value


def net_timeout() -> float:
    """Seconds to wait for a connection or a read (``ZOO_NET_TIMEOUT``, default 30)."""
    return float(_env_number(TIMEOUT_ENV, DEFAULT_TIMEOUT, float, 0.001))


def net_retries() -> int:
    """Attempts after the first (``ZOO_NET_RETRIES``, default 2)."""
    return int(_env_number(RETRIES_ENV, DEFAULT_RETRIES, int, 0))


class _Retry(Exception):
    """A failure worth another attempt (its message is the reason)."""


def _fetch_once(url: str, dest: str, timeout: float, progress: bool) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "zoo"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        reason = f"HTTP {e.code} {e.reason}"
        if e.code >= 500 or e.code == 429:
            raise _Retry(reason) from None
        raise NetworkError(url, reason, 1) from None
    except (socket.timeout, TimeoutError):
        raise _Retry(f"no answer within {timeout:g} s") from None
    except urllib.error.URLError as e:
        why = e.reason
        if isinstance(why, (socket.timeout, TimeoutError)):
            raise _Retry(f"no answer within {timeout:g} s") from None
        raise _Retry(f"cannot connect ({why})") from None
    except (ConnectionError, http.client.HTTPException, OSError) as e:
        raise _Retry(f"{type(e).__name__}: {e}") from None
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        bar = None
        if progress:  # only once the server has answered: a failed connection prints no bar
            from tqdm.auto import tqdm
            bar = tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(url)[:40], leave=False)
        got = 0
        try:
            with open(dest, "wb") as f:
                while True:
                    try:
                        block = response.read1(_CHUNK)  # what has arrived: progress is counted as it comes
                    except (socket.timeout, TimeoutError):
                        raise _Retry(f"stalled: no data for {timeout:g} s after {got} bytes") from None
                    except (ConnectionError, http.client.HTTPException, OSError) as e:
                        raise _Retry(f"connection lost after {got} bytes ({type(e).__name__}: {e})") from None
                    if not block:
                        break
                    f.write(block)
                    got += len(block)
                    if bar is not None:
                        bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()
    if total is not None and got != total:
        raise _Retry(f"incomplete: {got} of {total} bytes")


def download(url: str, dest: str, *, progress: bool = False,
             sleep: Callable[[float], None] = time.sleep, timeout: Optional[float] = None,
             retries: Optional[int] = None) -> None:
    """Download ``url`` into the file ``dest`` (overwritten), with the timeouts and retries of the
    module docstring; raises `NetworkError` (one line) when every attempt failed. ``dest`` may hold
    part of the body after a failure: the caller stages it and removes it."""
    timeout = net_timeout() if timeout is None else timeout
    retries = net_retries() if retries is None else retries
    reason = ""
    for attempt in range(retries + 1):
        if attempt:
            sleep(min(30.0, 2.0 ** (attempt - 1)))
        try:
            _fetch_once(url, dest, timeout, progress)
            return
        except _Retry as e:
            reason = str(e)
        except NetworkError as e:
            raise NetworkError(url, e.reason, attempt + 1) from None
    raise NetworkError(url, f"{reason} ({TIMEOUT_ENV}={timeout:g} s per read)" if "within" in reason or
                       "stalled" in reason else reason, retries + 1)


def fsspec_supports(scheme: str) -> bool:
    """Can fsspec (installed with ``zoo[ray]``) open URLs of ``scheme`` here (its implementation importable)?"""
    try:
        import fsspec
        fsspec.get_filesystem_class(scheme)
    except (ImportError, ValueError):
        return False
    return True


def copy_fsspec(url: str, dest: str, *, timeout: Optional[float] = None) -> None:
    """Copy ``url`` (a scheme fsspec opens: ``s3://``, ``gs://``, ``memory://`` ...) into the file
    ``dest``, failing with `NetworkError` when no data comes for ``timeout`` seconds
    (``ZOO_NET_TIMEOUT``): the copy runs in a thread watched by this one, since fsspec's backends
    each have (or lack) their own timeouts. A stalled thread is left to end on its own; ``dest`` is
    the caller's staging file to remove."""
    import threading

    import fsspec

    timeout = net_timeout() if timeout is None else timeout
    state = {"last": time.monotonic(), "got": 0, "error": None}

    def copy():
        try:
            with fsspec.open(url, "rb") as src, open(dest, "wb") as dst:
                while True:
                    block = src.read(_CHUNK)
                    if not block:
                        return
                    dst.write(block)
                    state["got"] += len(block)
                    state["last"] = time.monotonic()
        except OSError as e:  # not found, no permission, connection lost: the backends' OSErrors
            state["error"] = e

    worker = threading.Thread(target=copy, daemon=True, name=f"zoo-fetch {url}")
    worker.start()
    while worker.is_alive():
        worker.join(min(0.1, timeout))
        if worker.is_alive() and time.monotonic() - state["last"] > timeout:
            raise NetworkError(url, f"stalled: no data for {timeout:g} s after {state['got']} bytes "
                                    f"({TIMEOUT_ENV}={timeout:g} s per read)", 1)
    if state["error"] is not None:
        e = state["error"]
        raise NetworkError(url, f"{type(e).__name__}: {e}", 1)
