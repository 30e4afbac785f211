"""Released weights on disk: download (iopath), mirror, hash checks and the cache.

Files land in ``$ZOO_CACHE_DIR/weights`` (default ``~/.cache/zoo/weights``), each under its
release file name, written atomically: a download goes to ``.partial/`` first, is checked, then
renamed into place, so a killed download never leaves a file that looks complete (its partial
file is removed by the next fetch). The check: the published sha256 (or the prefix a torch.hub /
MMAction2 file name carries); where none is published, the sha256 of the first file is pinned in
``<name>.sha256`` and a later, different file is refused (trust on first use). A verified file's
digest, size and mtime are recorded beside it, so later uses re-hash it only if it changed.

``ZOO_WEIGHTS_MIRROR`` (a directory or a URL prefix) is tried first, by file name, with the
same checks: air-gapped clusters copy the release files there once.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from ._info import Weights

__all__ = ["MIRROR_ENV", "WeightsUnavailable", "HashMismatch", "weights_dir", "fetch_files", "import_files",
           "cached_files", "sha256_file", "mapped_path"]

MIRROR_ENV = "ZOO_WEIGHTS_MIRROR"


class WeightsUnavailable(FileNotFoundError):
    """A release file that is neither cached nor downloadable now (offline, or by hand only)."""


class HashMismatch(ValueError):
    """A file whose sha256 is not the published (or pinned) one; the file has been deleted."""


def weights_dir() -> Path:
    root = os.environ.get("ZOO_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "zoo")
    return Path(root) / "weights"


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _pin_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def _record_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".verified.json")


def _read_pin(dest: Path) -> Optional[str]:
    pin = _pin_path(dest)
    if not pin.is_file():
        return None
    return pin.read_text().strip() or None


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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
            _write_text(_pin_path(dest), digest + "\n")
    return digest


def _install(staged: Path, dest: Path, digest: str) -> str:
    os.replace(staged, dest)
    _write_record(dest, digest)
    return digest


def _cached(dest: Path, expected: Optional[str]) -> Optional[str]:
    """The digest of a cached file, checked; None if it is not cached. A file verified before is
    re-hashed only if its size or mtime changed (or it was put there by hand)."""
    if not dest.is_file():
        return None
    st = dest.stat()
    try:
        rec = json.loads(_record_path(dest).read_text())
        digest = rec["sha256"] if (rec["size"], rec["mtime_ns"]) == (st.st_size, st.st_mtime_ns) else None
    except (OSError, ValueError, KeyError):
        digest = None
    wanted = expected.lower() if expected else _read_pin(dest)
    if digest is None:
        digest = sha256_file(dest)
        if wanted and not digest.startswith(wanted):
            raise HashMismatch(f"cached {dest} has sha256 {digest}, not the {'published' if expected else 'pinned'} "
                               f"{wanted}: delete it and fetch again")
        if not wanted:
            _write_text(_pin_path(dest), digest + "\n")
        _write_record(dest, digest)
    elif wanted and not digest.startswith(wanted):
        raise HashMismatch(f"cached {dest} was verified as sha256 {digest}, not {wanted}: delete it and fetch again")
    return digest


def _write_record(dest: Path, digest: str) -> None:
    st = dest.stat()
    _write_text(_record_path(dest), json.dumps({"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


def _partial_dir() -> Path:
    """This process's staging directory, ``.partial/<pid>``; those of processes that are gone (a
    killed download) are removed first."""
    root = weights_dir() / ".partial"
    root.mkdir(parents=True, exist_ok=True)
    for d in root.iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid() and not _alive(int(d.name)):
            shutil.rmtree(d, ignore_errors=True)
    mine = root / str(os.getpid())
    mine.mkdir(exist_ok=True)
    return mine


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _download(url: str, staged: Path, progress: bool) -> None:
    import logging

    from iopath.common.download import download

    staged.unlink(missing_ok=True)
    log = logging.getLogger("iopath.common.download")  # its "Failed to download" line repeats our error
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        download(url, str(staged.parent), filename=staged.name, progress=progress)
    finally:
        log.setLevel(level)


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


def fetch_files(record: Weights, *, progress: bool = True) -> List[Tuple[Path, str]]:
    """``(local path, sha256)`` of each of ``record``'s files: cached, else copied from the mirror,
    else downloaded; each checked before it is returned."""
    if not record.files:
        raise WeightsUnavailable(f"{record.name}: the release names no file (published results only)")
    paths = []
    for file, expected in zip(record.files, record.hashes):
        dest = weights_dir() / file.rsplit("/", 1)[-1]
        digest = _cached(dest, expected)
        if digest is not None:
            paths.append((dest, digest))
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tried = []
        for src in _sources(file):
            staged = _partial_dir() / dest.name
            try:
                if "://" in src:
                    _download(src, staged, progress)
                elif os.path.isfile(src):
                    shutil.copyfile(src, staged)
                else:
                    tried.append(f"mirror {src}: no such file")
                    continue
            except Exception as e:  # urllib, http and socket errors: try the next source
                staged.unlink(missing_ok=True)
                reason = f"{type(e).__name__}: {getattr(e, 'reason', None) or e}"
                tried.append(reason if src == file else f"mirror {src}: {reason}")
                continue
            digest = _install(staged, dest, _verify(staged, dest, expected, src))
            break
        else:
            raise _unavailable(record, file, tried)
        paths.append((dest, digest))
    return paths


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
            raise FileNotFoundError(f"--from {src!r} does not exist")
        base = os.path.basename(src)
        target = base if base in names else (names[0] if len(names) == 1 and len(sources) == 1 else None)
        if target is None:
            raise ValueError(f"{src!r} is not a file of {record.name}; its files are {', '.join(names)}")
        by_name[target] = src
    out = []
    for name, expected in zip(names, record.hashes):
        if name not in by_name:
            continue
        dest = weights_dir() / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        staged = _partial_dir() / name
        shutil.copyfile(by_name[name], staged)
        _install(staged, dest, _verify(staged, dest, expected, by_name[name]))
        out.append(dest)
    return out


def cached_files(record: Weights) -> bool:
    """Whether every file of ``record`` is in the cache (not re-hashed)."""
    return bool(record.files) and all((weights_dir() / n).is_file() for n in record.file_names)


def mapped_path(record: Weights, digests: Sequence[str]) -> Path:
    """Where the state dict mapped to zoo's layout is cached, keyed by the source files' digests."""
    key = hashlib.sha256("".join(digests).encode()).hexdigest()[:12]
    return weights_dir() / "mapped" / f"{record.name}-{key}.pt"
