"""What the benchmarks record about the machine they ran on."""
from __future__ import annotations

import os
import platform


def cpuinfo_line(prefix: str) -> str:
    """The value of the first ``/proc/cpuinfo`` line starting with ``prefix`` ('' if unavailable)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith(prefix))
    except (OSError, StopIteration):
        return ""


def cpu_name() -> str:
    return cpuinfo_line("model name") or platform.processor() or "unknown"


def cpu_flags() -> set:
    return set(cpuinfo_line("flags").split())


def machine_description() -> dict:
    flags = cpu_flags()
    return {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "amx_bf16": "amx_bf16" in flags,
            "avx512_bf16": "avx512_bf16" in flags, "platform": platform.platform()}
