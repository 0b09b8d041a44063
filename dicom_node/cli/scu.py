"""``dicom-node echo`` and ``dicom-node send``: a convenience Verification / Storage SCU.

``send`` walks a folder recursively, proposes exactly the SOP class / transfer
syntax pairs the files need (at most 128 per association, PS3.8 9.3.2.2) and
sends every file's dataset bytes as they are on disk (pynetdicom's
``STORE_SEND_CHUNKED_DATASET``: no decoding, no re-encoding, bit-exact). Each
file's C-STORE status is reported; the exit status is 1 when any file failed.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import click
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info

from dicom_node.config import Destination
from dicom_node.scp.status import describe, is_success

logger = logging.getLogger(__name__)

#: PS3.8: an association carries at most 128 presentation contexts.
MAX_CONTEXTS = 128
DEFAULT_CALLING_AE = "NEUROTRIAGE"


@dataclass(frozen=True)
class FileToSend:
    """A DICOM file and the presentation context it needs."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str

    @property
    def context(self) -> tuple[str, str]:
        return self.sop_class_uid, self.transfer_syntax_uid


def _peer(text: str) -> Destination:
    try:
        return Destination.parse(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def collect_files(root: Path) -> tuple[list[FileToSend], list[Path]]:
    """DICOM files under ``root`` (or ``root`` itself), and the paths that are not DICOM."""
    candidates = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    files: list[FileToSend] = []
    skipped: list[Path] = []
    for path in candidates:
        try:
            meta = read_file_meta_info(path)
            files.append(
                FileToSend(
                    path=path,
                    sop_class_uid=str(meta.MediaStorageSOPClassUID),
                    sop_instance_uid=str(meta.MediaStorageSOPInstanceUID),
                    transfer_syntax_uid=str(meta.TransferSyntaxUID),
                )
            )
        except (InvalidDicomError, AttributeError, OSError, ValueError):
            skipped.append(path)
    return files, skipped


def batches(files: list[FileToSend]) -> list[list[FileToSend]]:
    """Split ``files`` so each batch needs at most :data:`MAX_CONTEXTS` contexts."""
    groups: list[list[FileToSend]] = []
    contexts: list[set[tuple[str, str]]] = []
    for item in files:
        for group, needed in zip(groups, contexts, strict=True):
            if item.context in needed or len(needed) < MAX_CONTEXTS:
                needed.add(item.context)
                group.append(item)
                break
        else:
            groups.append([item])
            contexts.append({item.context})
    return groups


def _association_failure(assoc: object) -> str:
    primitive = getattr(getattr(assoc, "acceptor", None), "primitive", None)
    if getattr(assoc, "is_rejected", False) and primitive is not None:
        return (
            f"association rejected: {primitive.result_str}, {primitive.source_str}, "
            f"{primitive.reason_str}"
        )
    return "could not associate (peer down, refused, aborted or timed out)"


def send_files(
    files: list[FileToSend], peer: Destination, calling_ae: str
) -> list[tuple[FileToSend, int | None, str]]:
    """C-STORE every file; return ``(file, status or None, description)`` per file."""
    from pynetdicom import AE, _config

    results: list[tuple[FileToSend, int | None, str]] = []
    previous = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        for group in batches(files):
            ae = AE(ae_title=calling_ae)
            for sop_class, syntax in sorted({item.context for item in group}):
                ae.add_requested_context(sop_class, syntax)
            assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title)
            if not assoc.is_established:
                reason = _association_failure(assoc)
                results.extend((item, None, reason) for item in group)
                continue
            try:
                for item in group:
                    results.append(_send_one(assoc, item))
                    if not assoc.is_established:
                        break
            finally:
                if assoc.is_established:
                    assoc.release()
            sent = {id(result[0]) for result in results}
            results.extend(
                (item, None, "association ended before it was sent")
                for item in group
                if id(item) not in sent
            )
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = previous
    return results


def _send_one(assoc: object, item: FileToSend) -> tuple[FileToSend, int | None, str]:
    accepted = {
        (str(cx.abstract_syntax), str(cx.transfer_syntax[0]))
        for cx in getattr(assoc, "accepted_contexts", [])
    }
    if item.context not in accepted:
        return (
            item,
            None,
            f"no accepted presentation context for {item.sop_class_uid} "
            f"in {item.transfer_syntax_uid}",
        )
    try:
        response = assoc.send_c_store(item.path)  # type: ignore[attr-defined]
    except (OSError, RuntimeError, ValueError) as exc:
        return item, None, f"C-STORE failed: {exc}"
    if not response or "Status" not in response:
        return item, None, "no C-STORE response (timeout or abort)"
    code = int(response.Status)
    return item, code, describe(code)


@click.command("echo")
@click.argument("peer", metavar="AET@HOST:PORT")
@click.option("--calling-ae", default=DEFAULT_CALLING_AE, show_default=True)
@click.option("--timeout", type=float, default=30.0, show_default=True)
def echo(peer: str, calling_ae: str, timeout: float) -> None:
    """Send a C-ECHO (Verification) to AET@HOST:PORT."""
    from pynetdicom import AE

    destination = _peer(peer)
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate(destination.host, destination.port, ae_title=destination.ae_title)
    if not assoc.is_established:
        click.echo(f"C-ECHO to {destination}: {_association_failure(assoc)}", err=True)
        sys.exit(1)
    try:
        response = assoc.send_c_echo()
    finally:
        assoc.release()
    if not response or "Status" not in response:
        click.echo(f"C-ECHO to {destination}: no response", err=True)
        sys.exit(1)
    code = int(response.Status)
    click.echo(f"C-ECHO to {destination}: {describe(code)}")
    if code != 0:
        sys.exit(1)


@click.command("send")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--to", "peer", required=True, metavar="AET@HOST:PORT", help="Storage SCP.")
@click.option("--calling-ae", default=DEFAULT_CALLING_AE, show_default=True)
def send(path: Path, peer: str, calling_ae: str) -> None:
    """C-STORE a DICOM file, or every DICOM file under a folder, bit-exact."""
    destination = _peer(peer)
    files, skipped = collect_files(path)
    for other in skipped:
        click.echo(f"{other}: skipped (not a DICOM file with File Meta Information)", err=True)
    if not files:
        click.echo(f"no DICOM files under {path}", err=True)
        sys.exit(1)
    failed = 0
    for item, code, text in send_files(files, destination, calling_ae):
        ok = code is not None and is_success(code)
        failed += not ok
        click.echo(f"{item.path}: {text}", err=not ok)
    click.echo(f"sent {len(files) - failed} of {len(files)} file(s) to {destination}")
    if failed:
        sys.exit(1)
