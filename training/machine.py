"""The machine a timing was taken on, recorded beside the timing.

The 2-core machines the project is measured on differ: the same synthetic-data
stage ran at 0.59 s per study on one and 1.2 s on another (an AMD EPYC of the first
Zen generation, ``docs/model.md``). A duration means little without the processor
that gave it, so the demo's summary and the benchmarks' reports carry
:func:`describe_machine`.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")


def cpu_model(cpuinfo: str | None = None) -> str:
    """The processor's name with its family and model numbers (``/proc/cpuinfo``).

    Virtual machines often report a bare family name ("AMD EPYC"), so the family and
    model numbers are appended: ``"AMD EPYC (family 23, model 1)"``. Falls back to
    :func:`platform.processor` (or ``"unknown"``) where there is no ``/proc/cpuinfo``.
    """
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if fields:
                break  # the first processor is enough
            continue
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.processor() or "unknown"
    numbers = [
        f"{label} {fields[key]}"
        for key, label in (("cpu family", "family"), ("model", "model"))
        if fields.get(key)
    ]
    return f"{name} ({', '.join(numbers)})" if numbers else name


def describe_machine() -> dict[str, Any]:
    """Processor, usable cores, Python and torch versions, and the GPU if torch sees one."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu_model(),
        "cores": cores,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": gpu,
    }
