"""What a measurement records about where it ran: the machine, library versions and the zoo
commit, and the process's peak memory. Shared by ``benchmarks/`` and ``zoo compare``."""
from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional

__all__ = ["cpu_name", "cpu_flags", "cpu_identity", "machine_description", "code_revision", "versions", "peak_rss_mib",
           "peak_rss_since_exec_mib"]


def _cpuinfo_line(prefix: str) -> str:
    """The value of the first ``/proc/cpuinfo`` line starting with ``prefix`` ('' if unavailable)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith(prefix))
    except (OSError, StopIteration):
        return ""


def cpu_name() -> str:
    return _cpuinfo_line("model name") or platform.processor() or "unknown"


def cpu_flags() -> set:
    return set(_cpuinfo_line("flags").split())


def cpu_identity() -> Dict[str, object]:
    """What picks the CPU kernels' blocking (and so their rounding) beyond the name and the flags: the
    vendor's family / model / stepping and the cache sizes. Two hosts with one marketing name (a VM's
    generic "Intel(R) Xeon(R) Processor") can be different parts that round differently."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if not key.strip():
                    break  # the first processor's block only
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    caches = []
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(base.glob("index*")) if base.is_dir() else []:
        try:
            caches.append("L{}{}:{}".format((index / "level").read_text().strip(),
                                            (index / "type").read_text().strip()[0].lower(),
                                            (index / "size").read_text().strip()))
        except OSError:
            continue
    return {"model": "/".join(fields.get(k, "?") for k in ("cpu family", "model", "stepping")), "caches": caches}


def machine_description() -> Dict[str, object]:
    flags = cpu_flags()
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "amx_bf16": "amx_bf16" in flags,
            "avx512_bf16": "avx512_bf16" in flags, "avx512_vnni": "avx512_vnni" in flags, "platform": platform.platform(),
            "loadavg_at_start": load}


def code_revision() -> Optional[str]:
    """The git commit of the zoo checkout being measured, ``+dirty`` when its code (``zoo/``,
    ``benchmarks/`` but its results) has uncommitted changes; None outside a git checkout."""
    root = str(Path(__file__).resolve().parents[2])

    def git(*args):
        return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, check=True).stdout.strip()
    try:
        rev = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "zoo", "benchmarks",
                    ":(exclude)benchmarks/results")
    except (OSError, subprocess.CalledProcessError):
        return None
    return rev + ("+dirty" if dirty else "")


def versions() -> Dict[str, str]:
    """Versions of python and of the libraries a measurement depends on, and the zoo commit
    (`code_revision`)."""
    out = {"python": platform.python_version()}
    revision = code_revision()
    if revision:
        out["zoo_commit"] = revision
    for name in ("zoo", "torch", "torchvision", "timm", "fvcore", "av", "numpy"):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name)
            except ImportError:
                continue
        out[name] = getattr(module, "__version__", "unknown")
    return out


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def peak_rss_since_exec_mib() -> float:
    """Peak resident memory of this process image in MiB (Linux ``VmHWM``), for measuring a child
    process: unlike ``ru_maxrss``, which Linux carries over fork + exec (a child of a 2 GiB parent
    starts at 2 GiB), it starts afresh at ``exec``. Falls back to `peak_rss_mib` without ``/proc``."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024.0
    except (OSError, StopIteration, ValueError):
        return peak_rss_mib()
