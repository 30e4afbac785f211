"""Files that are whole or absent, and outputs checked before the work starts.

- `atomic_write`: a temporary file beside the target, fsync, then ``os.replace``; a write that fails
  (disk full, ``ulimit -f``) raises `WriteError` naming the file and the OS reason, and leaves nothing.
- `write_files`: several files of one directory replaced as one set (an evaluation's logits, metrics
  and plots), through a journal that the next `clean_directory` completes if the process died midway.
- `clean_directory`: removes the temporary files a killed zoo process left (their names say so:
  ``NAME.zoo<pid>-<random>.tmp``, the process gone) and nothing else.
- `check_output_dir` / `check_output_file`: a ``--out`` that cannot be created or written is refused
  before any decoding or training (`prepare_output_dir` / `prepare_output_file` also clean it up).
"""
from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from ._errors import BadData, OutputError, ZooError

__all__ = ["WriteError", "OutputError", "USER_ERRNOS", "pid_alive", "display_name", "read_text", "atomic_write", "atomic_write_text", "atomic_save", "write_files", "commit_files", "write_temp", "sha256_file",
           "temp_path", "clean_directory", "check_output_dir", "check_output_file", "prepare_output_dir",
           "prepare_output_file"]

JOURNAL = ".zoo-commit.json"  # the set `write_files` is replacing; removed once every file is in place
_TEMP = re.compile(r"^.+\.zoo(?P<pid>\d+)-[A-Za-z0-9_]+\.tmp(\.[A-Za-z0-9]+)*$")
_HINTS = {errno.ENOSPC: "the disk is full: free space or write elsewhere",
          errno.EFBIG: "the file-size limit (`ulimit -f`) is too small for it",
          errno.EDQUOT: "the disk quota is used up",
          errno.EROFS: "the file system is read-only: write elsewhere",
          errno.EACCES: "no permission to write there",
          errno.EPERM: "no permission to write there",
          errno.EISDIR: "a directory is in its place"}
USER_ERRNOS = frozenset(_HINTS)  # OS errors of a write that the user fixes (space, limits, permissions, paths)


class WriteError(ZooError, OSError):
    """Writing ``path`` failed: the message names the file, the OS reason and what to do."""

    def __init__(self, path: str, error: OSError):
        code = error.errno or 0
        reason = error.strerror or str(error)
        hint = _HINTS.get(code)
        self.path, self.message = path, f"cannot write {path}: {reason}" + (f" ({hint})" if hint else "")
        super().__init__(code, self.message, path)

    def __str__(self) -> str:
        return self.message


def read_text(path: str) -> str:
    """A text file's content as UTF-8 (a byte-order mark dropped). A file that is not UTF-8 (a
    Latin-1 CSV, a video) raises `ValueError` naming the file, the line and the byte."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise BadData(f"{display_name(path)}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}): "
                         f"save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8 IN > OUT`)") from None


def display_name(path) -> str:
    """``path`` as text any output can show: bytes of a file name that are not UTF-8 (kept by
    Python as lone surrogates, which fonts and encoders refuse) become U+FFFD."""
    return os.fsencode(os.fspath(path)).decode("utf-8", "replace")


def temp_path(path: str, tag: Optional[str] = None, ext: str = "") -> str:
    """A temporary name beside ``path`` that `clean_directory` recognises once this process is gone:
    ``NAME.zoo<pid>-<tag or random>.tmp[ext]`` (``ext`` for tools that choose a format by extension).
    With ``tag=None`` the file is created (``mkstemp``) so that the name is this caller's alone."""
    directory, base = os.path.split(os.path.abspath(path))
    prefix = f"{base}.zoo{os.getpid()}-"
    if tag is not None:
        return os.path.join(directory, f"{prefix}{tag}.tmp{ext}")
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp" + ext, dir=directory)
    os.close(fd)
    return tmp


class _Guarded:
    """A file whose write errors are remembered: ``torch.save`` turns them into 'unexpected pos'."""

    def __init__(self, f):
        self._f, self.error = f, None

    def write(self, data):
        try:
            return self._f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self):
        try:
            return self._f.flush()
        except OSError as e:
            self.error = e
            raise

    def __getattr__(self, name):
        return getattr(self._f, name)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def write_temp(path: str, mode: str, write: Callable) -> str:
    """``write(file)`` into a fresh temporary file beside ``path``, flushed and fsynced; its name."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        tmp = temp_path(path)
    except OSError as e:
        raise WriteError(path, e) from None
    umask = os.umask(0)
    os.umask(umask)
    guarded = None
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions of a new file
        with open(tmp, mode) as f:
            guarded = _Guarded(f)
            write(guarded)
            f.flush()
            os.fsync(f.fileno())
        return tmp
    except BaseException as e:
        _unlink(tmp)
        cause = guarded.error if guarded is not None and guarded.error is not None else e
        if isinstance(cause, OSError) and not isinstance(cause, WriteError):
            raise WriteError(path, cause) from None
        raise


def _sync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str, mode: str, write: Callable) -> None:
    """Call ``write(file)`` on a temporary file in ``path``'s directory, fsync, then ``os.replace``:
    a reader (or a run killed mid-write) sees the old file or the new one, never half of one."""
    tmp = write_temp(path, mode, write)
    try:
        os.replace(tmp, path)
    except OSError as e:
        _unlink(tmp)
        raise WriteError(path, e) from None
    _sync_dir(os.path.dirname(os.path.abspath(path)))


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` atomically (temporary file + fsync + ``os.replace``)."""
    atomic_write(path, "w", lambda f: f.write(text))


def atomic_save(obj, path: str) -> None:
    """``torch.save`` atomically (temporary file + fsync + ``os.replace``)."""
    import torch

    atomic_write(path, "wb", lambda f: torch.save(obj, f))


def write_files(directory: str, files: Dict[str, Tuple[str, Callable]], remove: Iterable[str] = ()) -> Dict[str, str]:
    """Replace several files of ``directory`` as one set: ``files`` maps a name to ``(mode, write)``
    as in `atomic_write`; ``remove`` names files that belong to the old set only. Every file is
    written to a temporary one first, then `commit_files` puts them in place. Returns the paths."""
    clean_directory(directory)
    temps: Dict[str, str] = {}
    try:
        for name, (mode, write) in files.items():
            temps[name] = write_temp(os.path.join(directory, name), mode, write)
    except BaseException:
        for tmp in temps.values():
            _unlink(tmp)
        raise
    return commit_files(directory, temps, remove)


def commit_files(directory: str, temps: Dict[str, str], remove: Iterable[str] = ()) -> Dict[str, str]:
    """Rename the temporary files ``temps`` (name -> a `temp_path` of that name, written and
    fsynced) over the files of ``directory`` as one set: a journal lists the renames, the renames
    run, and the journal goes. A process killed during the renames leaves the journal, and the next
    `clean_directory` completes them: readers see the old set or the new one. Returns the paths."""
    try:
        journal = {"pid": os.getpid(), "replace": [[os.path.basename(t), n] for n, t in temps.items()],
                   "remove": [r for r in remove if r not in temps]}
        atomic_write_text(os.path.join(directory, JOURNAL), json.dumps(journal) + "\n")
    except BaseException:
        for tmp in temps.values():
            _unlink(tmp)
        raise
    _complete(directory, journal)
    return {name: os.path.join(directory, name) for name in temps}


def sha256_file(path, chunk: int = 1 << 20) -> str:
    """The sha256 (hex) of a file's bytes."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _plain(name) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and os.path.basename(name) == name


def _complete(directory: str, journal: dict) -> None:
    """The renames and removals of a journal; entries that are not plain names of this directory
    (a temporary file of zoo's naming, for the sources) are ignored: a journal is never trusted further."""
    for tmp, name in journal["replace"]:
        if _plain(name) and _plain(tmp) and _TEMP.match(tmp) and os.path.exists(os.path.join(directory, tmp)):
            os.replace(os.path.join(directory, tmp), os.path.join(directory, name))
    for name in journal["remove"]:
        if _plain(name):
            _unlink(os.path.join(directory, name))
    _sync_dir(directory)
    os.unlink(os.path.join(directory, JOURNAL))


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs (one of another user counts: it may own the file)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):  # not a pid at all
        return False
    return True


def _gone(pid: int) -> bool:
    """True when no process ``pid`` runs (this process counts as gone: it is not writing anything
    while it cleans up)."""
    return pid == os.getpid() or not pid_alive(pid)


def clean_directory(directory: str) -> List[str]:
    """Complete a set replacement a killed process left half done, then remove the temporary files of
    zoo's naming whose process is gone. Never touches other files. Returns the names removed."""
    if not os.path.isdir(directory):
        return []
    journal_path = os.path.join(directory, JOURNAL)
    if os.path.isfile(journal_path):
        try:
            with open(journal_path) as f:
                journal = json.load(f)
            pid = int(journal["pid"])
            journal = {"replace": [tuple(pair) for pair in journal["replace"] if len(pair) == 2],
                       "remove": list(journal["remove"])}
        except (OSError, ValueError, KeyError, TypeError):  # written atomically, so never half: not zoo's
            journal, pid = None, os.getpid()
        if journal is None:
            _unlink(journal_path)
        elif _gone(pid):
            _complete(directory, journal)
    removed = []
    for name in sorted(os.listdir(directory)):
        m = _TEMP.match(name)
        if m and _gone(int(m["pid"])) and os.path.isfile(os.path.join(directory, name)):
            _unlink(os.path.join(directory, name))
            removed.append(name)
    return removed


def _probe(directory: str) -> Optional[str]:
    """Why a file cannot be created in the existing ``directory`` (None when it can)."""
    try:
        tmp = temp_path(os.path.join(directory, "probe"))
    except OSError as e:
        return e.strerror or str(e)
    _unlink(tmp)
    return None


def check_output_dir(path: str, flag: str = "--out") -> None:
    """Raise `OutputError` (one line) unless directory ``path`` exists or can be created, and files
    can be written in it; nothing is created. Call it before the work whose results go there."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputError(f"{flag} {path}: a file is in its place (it must be a directory): remove it or choose "
                          f"another {flag}")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise OutputError(f"{flag} {path}: {existing} is a file, so the directory cannot be created: choose "
                          f"another {flag}")
    why = _probe(existing)
    if why:
        where = "" if existing == os.path.abspath(path) else f" (in {existing})"
        raise OutputError(f"{flag} {path}: cannot write there{where}: {why}: choose another {flag}")


def check_output_file(path: str, flag: str = "--out") -> None:
    """Raise `OutputError` unless file ``path`` can be written: not a directory, its directory
    existing and writable."""
    if os.path.isdir(path):
        raise OutputError(f"{flag} {path} is a directory: name a file")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OutputError(f"{flag} {path}: directory {directory} does not exist: create it first")
    why = _probe(directory)
    if why:
        raise OutputError(f"{flag} {path}: cannot write in {directory}: {why}: choose another {flag}")


def prepare_output_dir(path: str, flag: str = "--out") -> List[str]:
    """`check_output_dir`, then `clean_directory` (what a killed run left there); the names removed."""
    check_output_dir(path, flag)
    return clean_directory(path)


def prepare_output_file(path: str, flag: str = "--out") -> List[str]:
    """`check_output_file`, then `clean_directory` of its directory; the names removed."""
    check_output_file(path, flag)
    return clean_directory(os.path.dirname(os.path.abspath(path)))
