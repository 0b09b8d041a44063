"""Presentation contexts the SCP accepts: every storage SOP class, every stored syntax.

Compressed data is stored as received (bit-exact); nothing is decoded in the SCP.
"""

from __future__ import annotations

from typing import Final

from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    JPEG2000MC,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEG2000MCLossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, AllStoragePresentationContexts
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

#: Transfer syntaxes accepted for every storage SOP class, uncompressed ones first.
STORAGE_TRANSFER_SYNTAXES: Final[tuple[UID, ...]] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,  # process 14
    JPEGLosslessSV1,  # process 14, selection value 1
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    JPEG2000MCLossless,
    JPEG2000MC,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    HTJ2K,
    RLELossless,
)

#: Every storage SOP class pynetdicom knows (MR, Enhanced MR, SC, SR, SEG, ...).
STORAGE_SOP_CLASSES: Final[tuple[UID, ...]] = tuple(
    UID(str(cx.abstract_syntax)) for cx in AllStoragePresentationContexts
)


def add_scp_contexts(ae: AE) -> None:
    """Add Verification and all storage contexts with :data:`STORAGE_TRANSFER_SYNTAXES`."""
    ae.add_supported_context(Verification)
    for sop_class in STORAGE_SOP_CLASSES:
        ae.add_supported_context(sop_class, list(STORAGE_TRANSFER_SYNTAXES))
