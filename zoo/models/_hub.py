"""Released weights on disk: download, mirror, hash checks and the cache.

Files land in ``$ZOO_CACHE_DIR/weights`` (default ``~/.cache/zoo/weights``), each under its
release file name. A download is staged in a directory of this process's own
(``weights/.zoo-staging-<pid>-<random>``, made by ``mkdtemp``), checked, then renamed into place,
so a killed download never leaves a file that looks complete; the staging directory goes when the
fetch ends, and one whose process is gone (a killed download) is removed by the next fetch. Only
those are ever removed, and only when they are real directories: the cache's own directories
(``mapped/``, ``urls/``, staging) must not be symbolic links (`CacheError` says so in one line).

The check: the published sha256 (or the prefix a torch.hub / MMAction2 file name carries); where
none is published, the sha256 of the first file is pinned in ``<name>.sha256`` and a later,
different file is refused (trust on first use). A verified file's digest is recorded beside it
with its identity (inode, size, mtime, ctime); a later use re-hashes the file whenever that
identity changed, so a file edited in place is caught even with its mtime restored (the ctime
cannot be restored). Hashing every use instead is measured in ``benchmarks/weights_check.py``.

The state dict mapped to zoo's layout is cached in ``mapped/`` with a record of the digests it was
derived from and its own digest; it is used only when both match, else rebuilt from the release.

Downloads (`zoo._net`) time out and retry (``ZOO_NET_TIMEOUT``, ``ZOO_NET_RETRIES``).
``ZOO_WEIGHTS_MIRROR`` (a directory or a URL prefix) is tried first, by file name, with the same
checks: air-gapped clusters copy the release files there once. A checkpoint URL passed as weights
(``--weights URL``) is fetched the same way into ``urls/`` (pinned on first use).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

from .._errors import InputNotFound, OutputError, Unavailable, UsageError, ZooError
from .._files import atomic_write_text, clean_directory, pid_alive, sha256_file
from .._net import NetworkError, download
from ._info import Weights

__all__ = ["MIRROR_ENV", "WeightsUnavailable", "HashMismatch", "CacheError", "weights_dir", "fetch_files",
           "import_files", "cached_files", "mapped_path", "fetch_url", "load_mapped", "save_mapped",
           "clean_staging"]

MIRROR_ENV = "ZOO_WEIGHTS_MIRROR"
_STAGING = re.compile(r"^\.zoo-staging-(?P<pid>\d+)-[A-Za-z0-9_]+$")


class WeightsUnavailable(Unavailable, FileNotFoundError):
    """A release file that is neither cached nor downloadable now (offline, or by hand only)."""


class HashMismatch(ZooError, ValueError):
    """A file whose sha256 is not the published (or pinned) one; the file has been deleted."""


class CacheError(OutputError):
    """The cache's own structure is not what zoo made (a symbolic link in it): nothing is written."""


def weights_dir() -> Path:
    root = os.environ.get("ZOO_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "zoo")
    return Path(root) / "weights"


def _own_dir(path: Path, create: bool = True) -> Path:
    """``path``, a directory of the cache's own structure, created if absent (with ``create``); a
    symbolic link (or a file) in its place is refused, never followed."""
    if path.is_symlink():
        raise CacheError(f"{path} is a symbolic link (to {os.readlink(path)}): zoo writes and deletes only in real "
                         f"directories of its cache; remove the link (or point ZOO_CACHE_DIR elsewhere)")
    if not create and not path.exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    if not path.is_dir() or path.is_symlink():
        raise CacheError(f"{path} is not a directory: remove it (zoo's cache keeps its files there)")
    return path


# -- what a verified file was -----------------------------------------------------------------
def _identity(path: Path) -> dict:
    """What changes whenever the file's bytes do: inode, size, mtime and ctime (a write, a rename
    over it or a restored mtime all move the ctime)."""
    st = path.stat()
    return {"inode": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


def _record_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".verified.json")


def _write_record(dest: Path, digest: str, **extra) -> None:
    atomic_write_text(str(_record_path(dest)), json.dumps({"sha256": digest, **_identity(dest), **extra}) + "\n")


def _read_record(dest: Path) -> dict:
    try:
        rec = json.loads(_record_path(dest).read_text())
    except (OSError, ValueError):
        return {}
    return rec if isinstance(rec, dict) else {}


def _current_digest(dest: Path, rec: dict) -> str:
    """``dest``'s sha256: the recorded one while the file's identity is the one recorded with it,
    else hashed again."""
    same = rec.get("sha256") and all(rec.get(k) == v for k, v in _identity(dest).items())
    return rec["sha256"] if same else sha256_file(dest)


# -- pins and checks ----------------------------------------------------------------------------
def _pin_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def _read_pin(dest: Path) -> Optional[str]:
    pin = _pin_path(dest)
    if not pin.is_file():
        return None
    return pin.read_text().strip() or None


def _verify(staged: Path, dest: Path, expected: Optional[str], origin: str) -> str:
    """Check ``staged`` against the published digest or the pin; delete it and raise on mismatch."""
    digest = sha256_file(staged)
    if expected:
        if not digest.startswith(expected.lower()):
            staged.unlink(missing_ok=True)
            raise HashMismatch(f"{dest.name} from {origin}: sha256 {digest} does not match the published "
                               f"{expected}; the file was deleted (a corrupt or substituted download)")
    else:
        pinned = _read_pin(dest)
        if pinned and pinned != digest:
            staged.unlink(missing_ok=True)
            raise HashMismatch(f"{dest.name} from {origin}: sha256 {digest} differs from {pinned}, pinned when it "
                               f"was first downloaded ({_pin_path(dest)}); refused and deleted. Delete the pin "
                               f"file only if the release really changed")
        if not pinned:
            atomic_write_text(str(_pin_path(dest)), digest + "\n")
    return digest


def _install(staged: Path, dest: Path, digest: str) -> str:
    os.replace(staged, dest)
    _write_record(dest, digest)
    return digest


def _cached(dest: Path, expected: Optional[str]) -> Optional[str]:
    """The digest of a cached file, checked against the published digest or the pin; None if it
    is not cached. The file is hashed again whenever its identity changed (see the module docstring)."""
    if not dest.is_file():
        return None
    rec = _read_record(dest)
    digest = _current_digest(dest, rec)
    wanted = expected.lower() if expected else _read_pin(dest)
    if wanted and not digest.startswith(wanted):
        raise HashMismatch(f"cached {dest} has sha256 {digest}, not the {'published' if expected else 'pinned'} "
                           f"{wanted}: it changed on disk; delete it and fetch again")
    if not wanted:
        atomic_write_text(str(_pin_path(dest)), digest + "\n")
    if digest != rec.get("sha256") or any(rec.get(k) != v for k, v in _identity(dest).items()):
        _write_record(dest, digest)
    return digest


# -- staging ------------------------------------------------------------------------------------
def clean_staging(root: Optional[Path] = None) -> List[str]:
    """Remove the staging directories of processes that are gone (killed downloads): entries of
    the cache named ``.zoo-staging-<pid>-<random>`` that are real directories, their pid not
    running. Only their plain files are removed (a directory left inside keeps it). Returns the
    names removed."""
    root = weights_dir() if root is None else root
    removed = []
    if not root.is_dir():
        return removed
    for entry in sorted(os.listdir(root)):
        m = _STAGING.match(entry)
        path = root / entry
        if not m or int(m["pid"]) == os.getpid() or pid_alive(int(m["pid"])):
            continue
        if path.is_symlink() or not path.is_dir():
            continue  # not what zoo made: left alone
        for name in os.listdir(path):
            inner = path / name
            if inner.is_symlink() or inner.is_file():
                inner.unlink()
        with contextlib.suppress(OSError):  # not empty: something else is in it, kept
            path.rmdir()
            removed.append(entry)
    return removed


@contextlib.contextmanager
def _staging() -> Iterator[Path]:
    """A fresh staging directory of this process in the cache, removed when the block ends."""
    root = weights_dir()
    if root.is_symlink():
        root = root.resolve()  # the cache itself may live elsewhere; its inner structure may not
    root.mkdir(parents=True, exist_ok=True)
    clean_staging(root)
    clean_directory(str(root))  # the temporary pins and records of killed processes
    mine = Path(tempfile.mkdtemp(prefix=f".zoo-staging-{os.getpid()}-", dir=root))
    try:
        yield mine
    finally:
        shutil.rmtree(mine, ignore_errors=True)


# -- fetching -----------------------------------------------------------------------------------
def _sources(file: str) -> List[str]:
    name = file.rsplit("/", 1)[-1]
    out = []
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        out.append(mirror.rstrip("/") + "/" + name if "://" in mirror else os.path.join(mirror, name))
    if "://" in file:
        out.append(file)
    return out


def _unavailable(record: Weights, file: str, tried: Sequence[str]) -> WeightsUnavailable:
    name = file.rsplit("/", 1)[-1]
    where = f"download it from {file}" if "://" in file else f"fetch it by hand from {record.page or record.source}"
    why = f" ({'; '.join(tried)})" if tried else ""
    return WeightsUnavailable(
        f"{record.name}: {name} is not in the cache{why}: {where}, then run `zoo weights fetch {record.name} "
        f"--from {name}`, or put it in the directory (or URL prefix) named by {MIRROR_ENV}")


def _fetch_one(file: str, dest: Path, expected: Optional[str], progress: bool) -> Tuple[Optional[str], List[str]]:
    """``dest``'s digest once it is in the cache (from the mirror or the URL), else None and why."""
    tried: List[str] = []
    with _staging() as stage:
        for src in _sources(file):
            staged = stage / dest.name
            try:
                if "://" in src:
                    download(src, str(staged), progress=progress)
                elif os.path.isfile(src):
                    shutil.copyfile(src, staged)
                else:
                    tried.append(f"mirror {src}: no such file")
                    continue
            except (NetworkError, OSError) as e:  # try the next source
                staged.unlink(missing_ok=True)
                reason = e.detail if isinstance(e, NetworkError) else f"{type(e).__name__}: {e}"
                tried.append(f"{src}: {reason}" if src == file else f"mirror {src}: {reason}")
                continue
            return _install(staged, dest, _verify(staged, dest, expected, src)), tried
    return None, tried


def fetch_files(record: Weights, *, progress: bool = True) -> List[Tuple[Path, str]]:
    """``(local path, sha256)`` of each of ``record``'s files: cached, else copied from the mirror,
    else downloaded; each checked before it is returned."""
    if not record.files:
        raise WeightsUnavailable(f"{record.name}: the release names no file (published results only)")
    paths = []
    for file, expected in zip(record.files, record.hashes):
        dest = weights_dir() / file.rsplit("/", 1)[-1]
        digest = _cached(dest, expected)
        if digest is None:
            digest, tried = _fetch_one(file, dest, expected, progress)
            if digest is None:
                raise _unavailable(record, file, tried)
        paths.append((dest, digest))
    return paths


def fetch_url(url: str, *, progress: bool = True) -> Path:
    """A checkpoint URL given as weights, cached under ``urls/`` by its address (the mirror is
    tried first by file name); its content is pinned on first use like a release without a
    published digest."""
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "checkpoint"
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    dest = _own_dir(weights_dir() / "urls") / f"{key}-{name}"
    digest = _cached(dest, None)
    if digest is None:
        digest, tried = _fetch_one(url, dest, None, progress)
        if digest is None:
            raise WeightsUnavailable(f"cannot download {url} ({'; '.join(tried)}): download it by hand and pass "
                                     f"the file, or put it in the directory (or URL prefix) named by {MIRROR_ENV}")
    return dest


def import_files(record: Weights, sources: Sequence[str]) -> List[Path]:
    """Copy hand-fetched files into the cache with the same checks as a download (``zoo weights
    fetch TAG --from FILE``). Files are matched to the release by name; a one-file release
    takes a file of any name."""
    names = record.file_names
    if not names:
        raise WeightsUnavailable(f"{record.name}: the release names no file (published results only)")
    by_name = {}
    for src in sources:
        if not os.path.isfile(src):
            raise InputNotFound(f"--from {src!r} does not exist")
        base = os.path.basename(src)
        target = base if base in names else (names[0] if len(names) == 1 and len(sources) == 1 else None)
        if target is None:
            raise UsageError(f"{src!r} is not a file of {record.name}; its files are {', '.join(names)}")
        by_name[target] = src
    out = []
    for name, expected in zip(names, record.hashes):
        if name not in by_name:
            continue
        dest = weights_dir() / name
        with _staging() as stage:
            staged = stage / name
            shutil.copyfile(by_name[name], staged)
            _install(staged, dest, _verify(staged, dest, expected, by_name[name]))
        out.append(dest)
    return out


def cached_files(record: Weights) -> bool:
    """Whether every file of ``record`` is in the cache (not re-hashed)."""
    return bool(record.files) and all((weights_dir() / n).is_file() for n in record.file_names)


# -- the mapped state dicts -----------------------------------------------------------------------
def mapped_path(record: Weights, digests: Sequence[str]) -> Path:
    """Where the state dict mapped to zoo's layout is cached, keyed by the source files' digests."""
    key = hashlib.sha256("".join(digests).encode()).hexdigest()[:12]
    return weights_dir() / "mapped" / f"{record.name}-{key}.pt"


def load_mapped(record: Weights, digests: Sequence[str]):
    """The cached mapped state dict of ``record``'s files (``digests``), or None when there is none
    or it cannot be trusted: its record must name these source digests and its own digest must be
    the file's (re-hashed when the file's identity changed). An untrusted one is rebuilt."""
    import torch

    path = mapped_path(record, digests)
    _own_dir(path.parent, create=False)
    if not path.is_file():
        return None
    rec = _read_record(path)
    if rec.get("sources") != list(digests) or _current_digest(path, rec) != rec.get("sha256"):
        return None
    if any(rec.get(k) != v for k, v in _identity(path).items()):  # moved or copied, same bytes: re-recorded
        _write_record(path, rec["sha256"], sources=rec["sources"])
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged entry (whatever torch raises): the release is mapped again
        return None


def save_mapped(record: Weights, digests: Sequence[str], state_dict) -> Path:
    """Cache ``state_dict`` as the mapping of ``record``'s files (``digests``), with its record."""
    from .._files import atomic_save

    path = mapped_path(record, digests)
    _own_dir(path.parent)
    atomic_save(state_dict, str(path))
    _write_record(path, sha256_file(path), sources=list(digests))
    return path
