"""C-STORE SCU used by the delivery outbox (pynetdicom).

Each file is sent on its own association proposing exactly its SOP class with
its own transfer syntax (plus Implicit VR Little Endian, the default every SCP
accepts, when the file is uncompressed), so a PACS never has to accept a
context the node does not need. Failures are classified:

* :class:`TransientDeliveryError`: connection refused or reset, timeouts,
  association rejected *transient*, status 0xA7xx (Out of Resources) and other
  failures a later attempt may not see;
* :class:`AssociationRejectedPermanently` (transient for the outbox until
  ``PERMANENT_REJECT_TRIES`` attempts, then permanent: a PACS being reconfigured
  rejects callers it does not know yet);
* :class:`PermanentDeliveryError`: SOP class / transfer syntax rejected
  (no accepted presentation context), status 0x0122 (SOP class not supported),
  0xA9xx (data set does not match SOP class), 0xCxxx (cannot understand).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydicom import dcmread
from pydicom.uid import UID, ImplicitVRLittleEndian

from dicom_node.config import Destination
from dicom_node.errors import PermanentDeliveryError, TransientDeliveryError

logger = logging.getLogger(__name__)

_UNCOMPRESSED = {
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
}


class AssociationRejectedPermanently(TransientDeliveryError):
    """The peer rejected the association with result *rejected-permanent*.

    Treated as transient by the outbox for a few attempts, then as permanent.
    """


def proposed_transfer_syntaxes(transfer_syntax: str) -> list[str]:
    """Transfer syntaxes to propose for a file stored in ``transfer_syntax``."""
    if transfer_syntax in _UNCOMPRESSED and transfer_syntax != ImplicitVRLittleEndian:
        return [transfer_syntax, ImplicitVRLittleEndian]
    return [transfer_syntax]


def classify_status(status: int, where: str) -> None:
    """Raise the delivery error matching a non-success C-STORE status, else return."""
    if status == 0x0000 or (status & 0xF000) == 0xB000:
        if status:
            logger.warning("%s: stored with warning status 0x%04X", where, status)
        return
    if (status & 0xFF00) == 0xA700:
        raise TransientDeliveryError(f"{where}: peer out of resources (status 0x{status:04X})")
    if status in (0x0122, 0x0124) or (status & 0xFF00) in (0xA900, 0xC000):
        raise PermanentDeliveryError(f"{where}: peer refused the object (status 0x{status:04X})")
    raise TransientDeliveryError(f"{where}: C-STORE failed with status 0x{status:04X}")


def send_file(
    path: Path,
    destination: Destination,
    *,
    calling_ae: str,
    timeout: float = 30.0,
) -> None:
    """Send one DICOM file to ``destination`` by C-STORE; raise on failure."""
    from pynetdicom import AE

    try:
        dataset = dcmread(path)
    except FileNotFoundError:
        raise PermanentDeliveryError(f"file {str(path)!r} to deliver does not exist") from None
    sop_class = UID(str(dataset.SOPClassUID))
    sop_instance = str(dataset.SOPInstanceUID)
    transfer_syntax = str(dataset.file_meta.TransferSyntaxUID)
    where = f"{destination} SOP Instance {sop_instance}"

    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = timeout
    ae.dimse_timeout = timeout
    ae.network_timeout = timeout
    ae.connection_timeout = timeout
    ae.add_requested_context(sop_class, proposed_transfer_syntaxes(transfer_syntax))
    assoc = ae.associate(destination.host, destination.port, ae_title=destination.ae_title)
    if not assoc.is_established:
        _raise_association_failure(assoc, where, sop_class, transfer_syntax)
    try:
        status = assoc.send_c_store(dataset)
    except (OSError, RuntimeError, ValueError) as exc:
        assoc.abort()
        raise TransientDeliveryError(f"{where}: C-STORE failed: {exc}") from exc
    if not status or "Status" not in status:
        assoc.abort()
        raise TransientDeliveryError(f"{where}: no C-STORE response (timeout or abort)")
    assoc.release()
    classify_status(int(status.Status), where)
    logger.info("delivered SOP Instance %s to %s", sop_instance, destination)


def _raise_association_failure(
    assoc: object, where: str, sop_class: str, transfer_syntax: str
) -> None:
    primitive = getattr(getattr(assoc, "acceptor", None), "primitive", None)
    if getattr(assoc, "is_rejected", False) and primitive is not None:
        reason = f"{primitive.result_str}, {primitive.source_str}: {primitive.reason_str}"
        if primitive.result == 0x01:
            raise AssociationRejectedPermanently(f"{where}: association rejected ({reason})")
        raise TransientDeliveryError(f"{where}: association rejected ({reason})")
    if primitive is not None and primitive.result == 0x00:
        raise PermanentDeliveryError(
            f"{where}: peer accepted no presentation context for SOP class {sop_class} "
            f"with transfer syntax {transfer_syntax}"
        )
    raise TransientDeliveryError(f"{where}: could not associate (peer down, refused or timeout)")
