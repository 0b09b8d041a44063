"""Durable instance storage: ``storage/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm``.

An instance counts as stored only once it survives a power cut: it is written
to a temporary file on the same filesystem, the file is fsynced, atomically
renamed into place and the directory entry is fsynced. The registry is then
updated; :func:`reconcile` registers, at start-up, any file that reached the
disk but not the registry (a crash between the two steps).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from dicom_node.errors import InvalidInstanceError, OutOfResourcesError, StorageError

if TYPE_CHECKING:
    from dicom_node.config import NodeSettings

logger = logging.getLogger(__name__)

#: Temporary files being received live here, inside the storage tree, so the
#: final rename never crosses a filesystem boundary.
INCOMING_DIRNAME = ".incoming"
SUFFIX = ".dcm"

# PS3.5 9.1: components of digits separated by '.', at most 64 characters. Checking
# this also keeps a hostile UID such as "../../etc" out of the storage path.
_UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
# Lenient form accepted for storage paths: some modalities emit leading zeros.
_UID_PATH_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def check_uid(value: object, keyword: str) -> str:
    """Return ``value`` as a UID usable in a storage path, or raise.

    Raises :class:`InvalidInstanceError` naming ``keyword`` and the value when
    the UID is missing, longer than 64 characters or not digits and dots.
    """
    text = str(value).strip().rstrip("\x00") if value is not None else ""
    if not text:
        raise InvalidInstanceError(f"{keyword} is missing")
    if len(text) > 64 or not _UID_PATH_RE.match(text):
        raise InvalidInstanceError(f"{keyword} {text[:80]!r} is not a valid UID")
    return text


def is_strict_uid(value: str) -> bool:
    """True when ``value`` follows PS3.5 9.1 exactly (no leading zeros)."""
    return len(value) <= 64 and _UID_RE.match(value) is not None


def instance_path(storage_dir: Path, study_uid: str, series_uid: str, sop_uid: str) -> Path:
    """The final path of an instance (UIDs are validated)."""
    return (
        storage_dir
        / check_uid(study_uid, "StudyInstanceUID")
        / check_uid(series_uid, "SeriesInstanceUID")
        / f"{check_uid(sop_uid, 'SOPInstanceUID')}{SUFFIX}"
    )


def incoming_dir(storage_dir: Path) -> Path:
    """Where partially received files are written (same filesystem as the tree)."""
    return storage_dir / INCOMING_DIRNAME


def free_disk_mb(path: Path) -> float:
    """Free space, in MiB, available to this user on the filesystem holding ``path``.

    ``path`` need not exist yet: its nearest existing parent is measured.
    """
    probe = Path(path).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    stats = os.statvfs(probe)
    return stats.f_bavail * stats.f_frsize / (1024 * 1024)


def check_free_disk(storage_dir: Path, min_free_mb: float) -> float:
    """Return the free space in MiB; raise :class:`OutOfResourcesError` below ``min_free_mb``."""
    free = free_disk_mb(storage_dir)
    if free < min_free_mb:
        raise OutOfResourcesError(
            f"free disk at {str(storage_dir)!r} is {free:.0f} MiB, "
            f"below min_free_disk_mb={min_free_mb:g}"
        )
    return free


def fsync_path(path: Path) -> None:
    """fsync a file or directory by path (any descriptor flushes the inode)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DurableStore:
    """Moves received files into the storage tree durably.

    One instance per process; it remembers which directories it has already
    created and synced, so the common case costs one file fsync, one rename and
    one directory fsync.
    """

    def __init__(self, storage_dir: Path) -> None:
        self.storage_dir = Path(storage_dir)
        self.incoming = incoming_dir(self.storage_dir)
        self._known_dirs: set[Path] = set()
        self._syncer = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fsync")

    def start_sync(self, temp_path: Path) -> Future[None]:
        """Start fsyncing ``temp_path`` in a helper thread (overlaps it with parsing)."""
        return self._syncer.submit(fsync_path, temp_path)

    def prepare(self) -> None:
        """Create the storage root and the incoming directory (again, if removed)."""
        self._known_dirs.discard(self.incoming)
        self._ensure_dir(self.incoming)

    def commit(
        self,
        temp_path: Path,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        synced: Future[None] | None = None,
    ) -> tuple[Path, int]:
        """Durably move ``temp_path`` to its final place; return (path, size in bytes).

        ``temp_path`` must be on the storage filesystem (see :func:`incoming_dir`).
        A file already at the final path (a re-sent instance) is replaced atomically.
        ``synced`` is an fsync of ``temp_path`` already under way (see
        :meth:`start_sync`); it is awaited before the rename. Raises
        :class:`StorageError` when the filesystem refuses.
        """
        final = instance_path(self.storage_dir, study_uid, series_uid, sop_uid)
        try:
            if synced is None:
                fsync_path(temp_path)
            else:
                synced.result()
            size = temp_path.stat().st_size
            self._ensure_dir(final.parent)
            try:
                os.replace(temp_path, final)
            except FileNotFoundError:
                # A remembered directory was removed behind our back: create it again.
                self._known_dirs.clear()
                self._ensure_dir(final.parent)
                os.replace(temp_path, final)
            fsync_path(final.parent)
        except OSError as exc:
            raise StorageError(
                f"study {study_uid}: could not store SOPInstanceUID {sop_uid} at "
                f"{str(final)!r}: {exc.strerror or exc}"
            ) from exc
        return final, size

    def write(self, data: bytes, study_uid: str, series_uid: str, sop_uid: str) -> tuple[Path, int]:
        """Write ``data`` (a whole DICOM file) durably to its final path."""
        self._ensure_dir(self.incoming)
        fd, name = tempfile.mkstemp(dir=self.incoming, suffix=".part")
        temp = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise StorageError(
                f"study {study_uid}: could not write SOPInstanceUID {sop_uid}: {exc}"
            ) from exc
        try:
            return self.commit(temp, study_uid, series_uid, sop_uid)
        finally:
            temp.unlink(missing_ok=True)

    def _ensure_dir(self, directory: Path) -> None:
        """Create ``directory`` and its parents, fsyncing each new entry's parent."""
        if directory in self._known_dirs:
            return
        missing: list[Path] = []
        probe = directory
        while not probe.is_dir():
            missing.append(probe)
            if probe.parent == probe:
                break
            probe = probe.parent
        for new_dir in reversed(missing):
            # FileExistsError: another process created it; its entry is synced below
            with contextlib.suppress(FileExistsError):
                new_dir.mkdir()
            fsync_path(new_dir.parent)
        self._known_dirs.add(directory)


def iter_stored_files(storage_dir: Path) -> Iterator[Path]:
    """Every ``<study>/<series>/<sop>.dcm`` file in the tree (not the incoming area)."""
    if not storage_dir.is_dir():
        return
    for study_dir in sorted(storage_dir.iterdir()):
        if not study_dir.is_dir() or study_dir.name.startswith("."):
            continue
        for series_dir in sorted(study_dir.iterdir()):
            if not series_dir.is_dir():
                continue
            for path in sorted(series_dir.iterdir()):
                if path.suffix == SUFFIX and path.is_file():
                    yield path


#: Seconds without a write after which a file in the incoming area is abandoned
#: (pynetdicom writes every fragment as it arrives; network_timeout is 60 s).
ABANDONED_AFTER_S = 300.0


def clean_incoming(storage_dir: Path, older_than: float = ABANDONED_AFTER_S) -> int:
    """Delete partial files left in the incoming area by a crash; return how many.

    Only files not written for ``older_than`` seconds are deleted, so a call
    while the SCP runs leaves instances being received alone; pass 0 when no
    SCP process of this node runs.
    """
    removed = 0
    area = incoming_dir(storage_dir)
    if area.is_dir():
        cutoff = time.time() - older_than
        for path in area.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if path.is_file() and (older_than <= 0 or path.stat().st_mtime < cutoff):
                    path.unlink()
                    removed += 1
    return removed


def reconcile(settings: NodeSettings, incoming_older_than: float = ABANDONED_AFTER_S) -> int:
    """Register every stored file the registry lacks; return how many were registered.

    Run at start-up (:meth:`dicom_node.scp.service.ScpService.start` does, before
    it accepts associations): an instance whose file was synced but whose
    registry row was not committed (a crash between the two) is registered here.
    Files that do not parse are logged and left in place. Partial files in the
    incoming area older than ``incoming_older_than`` seconds are deleted.
    """
    from sqlalchemy import select

    from dicom_node.ingest import Registrar, read_header
    from dicom_node.registry import Instance, create_registry_engine, init_registry

    storage_dir = settings.storage_dir
    removed = clean_incoming(storage_dir, incoming_older_than)
    if removed:
        logger.info("removed %d partial file(s) from %s", removed, incoming_dir(storage_dir))
    engine = create_registry_engine(settings.database_url)
    try:
        init_registry(engine)
        with engine.connect() as conn:
            known = {row[0] for row in conn.execute(select(Instance.sop_instance_uid))}
        registrar = Registrar(engine)
        registered = 0
        for path in iter_stored_files(storage_dir):
            if path.stem in known:
                continue
            try:
                header = read_header(path)
            except InvalidInstanceError as exc:
                logger.warning("reconcile: skipping %s: %s", path, exc)
                continue
            expected = instance_path(
                storage_dir, header.study_uid, header.series_uid, header.sop_instance_uid
            )
            if expected != path:
                logger.warning(
                    "reconcile: study %s: %s does not match its UIDs (expected %s); skipped",
                    header.study_uid,
                    path,
                    expected,
                )
                continue
            registrar.register(header, path, path.stat().st_size, calling_ae=None)
            registered += 1
            logger.info(
                "reconcile: study %s: registered SOPInstanceUID %s found on disk",
                header.study_uid,
                header.sop_instance_uid,
            )
        if registered:
            logger.warning(
                "reconcile: registered %d instance(s) missing from the registry", registered
            )
        return registered
    finally:
        engine.dispose()
