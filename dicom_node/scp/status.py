"""DIMSE status codes the SCP returns, named in one place.

Values follow DICOM PS3.7 Annex C (general statuses) and PS3.4 Annex B.2.3
(Storage Service Class C-STORE statuses). Handlers return only these names, so
a typo such as 0x0210 for 0xC210 cannot slip into one branch.
"""

from __future__ import annotations

from typing import Final

#: Success (PS3.7 C.1.1).
SUCCESS: Final = 0x0000

#: Refused: Out of Resources (PS3.4 B.2.3, A7xx): free disk below the watermark.
OUT_OF_RESOURCES: Final = 0xA700
#: Refused: Out of Resources, the write itself failed (I/O error, disk full).
OUT_OF_RESOURCES_WRITE_FAILED: Final = 0xA701

#: Error: Cannot understand (PS3.4 B.2.3, Cxxx): the dataset does not parse.
CANNOT_UNDERSTAND: Final = 0xC000
#: Error: Cannot understand, a required UID (Study/Series/SOP Instance) is missing or invalid.
CANNOT_UNDERSTAND_MISSING_UID: Final = 0xC001
#: Error: Cannot understand, the dataset's SOP Instance UID differs from the command's.
CANNOT_UNDERSTAND_UID_MISMATCH: Final = 0xC002

#: Failure: Processing failure (PS3.7 C.4.2): stored on disk but the registry write failed,
#: or an unexpected error; the peer should re-send (storage is idempotent).
PROCESSING_FAILURE: Final = 0x0110

#: Human-readable names, for log lines and the ``send`` command's report.
STATUS_NAMES: Final[dict[int, str]] = {
    SUCCESS: "Success",
    OUT_OF_RESOURCES: "Refused: Out of Resources (disk below watermark)",
    OUT_OF_RESOURCES_WRITE_FAILED: "Refused: Out of Resources (write failed)",
    CANNOT_UNDERSTAND: "Error: Cannot understand (dataset does not parse)",
    CANNOT_UNDERSTAND_MISSING_UID: "Error: Cannot understand (required UID missing)",
    CANNOT_UNDERSTAND_UID_MISMATCH: "Error: Cannot understand (SOP Instance UID mismatch)",
    PROCESSING_FAILURE: "Failure: Processing failure",
}


def describe(status: int) -> str:
    """Return ``0xNNNN name`` for a status, naming the category of unknown codes."""
    name = STATUS_NAMES.get(status)
    if name is None:
        if status & 0xF000 == 0xC000:
            name = "Error: Cannot understand"
        elif status & 0xFF00 == 0xA700:
            name = "Refused: Out of Resources"
        elif status & 0xF000 == 0xB000:
            name = "Warning"
        else:
            name = "Failure"
    return f"0x{status:04X} {name}"


def is_success(status: int) -> bool:
    """True for Success and for the Warning statuses (the instance was stored)."""
    return status == SUCCESS or status & 0xF000 == 0xB000
