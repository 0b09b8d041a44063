"""Independent DICOM validators used by the tests (see ``shared/CONFORMANCE.md``).

* ``dciodvfy`` (dicom3tools): IOD check of any object; messages on stderr, exit 1
  when there is an ``Error``.
* pixelmed ``DicomSRValidator``: SR IOD and template (TID 1500) check. It always
  exits 0, so its output is searched for ``Error`` lines and for ``Exception`` /
  ``unrecognized`` (a run that checked nothing).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

PIXELMED_JAR = Path("/usr/share/java/pixelmed.jar")
_JAXP_LIMITS = (
    "-Djdk.xml.xpathExprGrpLimit=0",
    "-Djdk.xml.xpathExprOpLimit=0",
    "-Djdk.xml.xpathTotalOpLimit=0",
)
# A short run: the C1 compiler only and the serial collector halve the CPU time
# (~13 s -> ~7 s per file on this machine kind) with identical output.
_QUICK_JVM = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed: run `make sysdeps`")
    return path


def dciodvfy_messages(path: Path | str) -> list[str]:
    """Every message dciodvfy prints about ``path`` (errors and warnings)."""
    proc = subprocess.run(
        [_tool("dciodvfy"), str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
    )
    lines = [line.strip() for line in (proc.stderr + proc.stdout).splitlines()]
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"dciodvfy exited {proc.returncode} on {path}: {lines[-5:]}")
    return [line for line in lines if line]


def dciodvfy_errors(path: Path | str) -> list[str]:
    """dciodvfy's ``Error`` lines for ``path`` (empty: the IOD is valid)."""
    return [line for line in dciodvfy_messages(path) if line.startswith("Error")]


def dciodvfy_warnings(path: Path | str) -> list[str]:
    """dciodvfy's ``Warning`` lines for ``path``."""
    return [line for line in dciodvfy_messages(path) if line.startswith("Warning")]


def pixelmed_sr_output(path: Path | str) -> list[str]:
    """The output lines of pixelmed's DicomSRValidator on ``path``."""
    if not PIXELMED_JAR.exists():
        raise RuntimeError(f"{PIXELMED_JAR} is missing: run `make sysdeps`")
    proc = subprocess.run(
        [
            _tool("java"),
            *_JAXP_LIMITS,
            *_QUICK_JVM,
            "-cp",
            str(PIXELMED_JAR),
            "com.pixelmed.validate.DicomSRValidator",
            "-checktemplateid",
            "-checkcontentitemorder",
            str(path),
        ],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=240,
    )
    return [line.rstrip() for line in (proc.stdout + proc.stderr).splitlines()]


def pixelmed_error_lines(output: list[str]) -> list[str]:
    """Lines of DicomSRValidator output that are errors, or show it checked nothing."""
    return [
        line
        for line in output
        if line.startswith("Error") or "Exception" in line or "unrecognized" in line
    ]


def pixelmed_warning_lines(output: list[str]) -> list[str]:
    """``Warning`` lines of DicomSRValidator output."""
    return [line for line in output if line.startswith("Warning")]


def pixelmed_sr_errors(path: Path | str) -> list[str]:
    """DicomSRValidator's error lines for ``path`` (one JVM run, ~5-15 s)."""
    return pixelmed_error_lines(pixelmed_sr_output(path))


def pixelmed_sr_warnings(path: Path | str) -> list[str]:
    """DicomSRValidator's ``Warning`` lines for ``path`` (one JVM run)."""
    return pixelmed_warning_lines(pixelmed_sr_output(path))


def dsrdump_errors(path: Path | str) -> list[str]:
    """dcmtk ``dsrdump`` parsing the SR document tree: its ``E:`` lines (and a
    non-zero exit). Its one warning on our SRs, "The VR checker does not support
    this Specific Character Set: ISO_IR 192", is a dcmtk limitation (UTF-8)."""
    proc = subprocess.run(
        [_tool("dsrdump"), "-Ee", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
    )
    errors = [line for line in proc.stderr.splitlines() if line.startswith(("E:", "F:"))]
    if proc.returncode != 0:
        errors.append(f"dsrdump exited {proc.returncode}")
    return errors
