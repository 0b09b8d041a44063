"""Register stored instances in the registry (studies, series, instances, counts).

:class:`Registrar` is called by the SCP once an instance is durably on disk,
and by :func:`dicom_node.storage.reconcile` at start-up. Registration is

* idempotent: a re-sent SOP Instance UID updates its row (path, size, transfer
  syntax, caller, time) and leaves the counts alone;
* safe across processes: several SCP processes may register instances of the
  same new study at the same moment. Rows are created with
  ``INSERT ... ON CONFLICT DO NOTHING`` and re-read, and a transaction that
  still loses a race (unique violation, deadlock, SQLite busy) is retried;
* cheap: a handful of Core statements in one transaction, the first of them a
  write so SQLite takes its write lock up front (no read-then-upgrade
  ``SQLITE_BUSY``).

A new instance for a study that is no longer ``RECEIVING`` (complete, queued,
analysed, delivered ...) re-opens it through the state machine, which starts a
new analysis version once the study is quiet again.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.errors import InvalidInstanceError, RegistryError
from dicom_node.registry.models import Instance, Series, Study, StudyState, utcnow
from dicom_node.registry.transitions import transition
from dicom_node.storage import check_uid

logger = logging.getLogger(__name__)

#: The only attributes the node reads from a received dataset (no pixel data).
HEADER_KEYWORDS: tuple[str, ...] = (
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "StudyDescription",
    "BodyPartExamined",
    "AccessionNumber",
)

REOPEN_DETAIL = "new instance after dispatch"
_MAX_ATTEMPTS = 8


class HeaderError(InvalidInstanceError):
    """A received file does not parse or lacks a UID; carries the UIDs that could be read."""

    def __init__(self, message: str, uids: dict[str, str], missing_uid: bool) -> None:
        super().__init__(message)
        self.uids = uids
        self.missing_uid = missing_uid


@dataclass(frozen=True)
class InstanceHeader:
    """The identifiers and descriptive attributes the registry keeps for an instance."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    modality: str | None = None
    series_number: int | None = None
    series_description: str | None = None
    study_description: str | None = None
    body_part: str | None = None
    accession: str | None = None


def _text(ds: Dataset, keyword: str, limit: int) -> str | None:
    try:
        value = ds.get(keyword)
    except Exception:  # noqa: BLE001 - a malformed optional value is just not recorded
        return None
    if value is None:
        return None
    text = str(value).strip()
    return text[:limit] or None


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return None if value is None or value == "" else int(value)
    except Exception:  # noqa: BLE001 - a malformed optional value is just not recorded
        return None


def _looks_like_uid(value: str) -> bool:
    return len(value) <= 64 and all(char.isdigit() or char == "." for char in value)


def read_header(path: Path) -> InstanceHeader:
    """Read only :data:`HEADER_KEYWORDS` and the transfer syntax from a DICOM file.

    Stops before the pixel data and decodes nothing else. Raises
    :class:`HeaderError` (an :class:`InvalidInstanceError`) when the file does
    not parse or a Study/Series/SOP Instance/SOP Class UID is missing or invalid.
    """
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=list(HEADER_KEYWORDS))
        transfer_syntax = str(ds.file_meta.TransferSyntaxUID)
    except Exception as exc:
        raise HeaderError(
            f"dataset does not parse: {type(exc).__name__}: {str(exc)[:200]}",
            uids={},
            missing_uid=False,
        ) from exc
    uids: dict[str, str] = {}
    for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        value = _text(ds, keyword, 80)
        if value:
            # Log-safe: a value that is not a UID is not echoed (it could be anything).
            uids[keyword] = value if _looks_like_uid(value) else "<invalid>"
    try:
        checked = {
            keyword: check_uid(uids.get(keyword), keyword)
            for keyword in (
                "StudyInstanceUID",
                "SeriesInstanceUID",
                "SOPInstanceUID",
                "SOPClassUID",
            )
        }
    except InvalidInstanceError as exc:
        raise HeaderError(str(exc), uids=uids, missing_uid=True) from exc
    return InstanceHeader(
        study_uid=checked["StudyInstanceUID"],
        series_uid=checked["SeriesInstanceUID"],
        sop_instance_uid=checked["SOPInstanceUID"],
        sop_class_uid=checked["SOPClassUID"],
        transfer_syntax_uid=transfer_syntax,
        modality=_text(ds, "Modality", 16),
        series_number=_int(ds, "SeriesNumber"),
        series_description=_text(ds, "SeriesDescription", 128),
        study_description=_text(ds, "StudyDescription", 128),
        body_part=_text(ds, "BodyPartExamined", 64),
        accession=_text(ds, "AccessionNumber", 64),
    )


@dataclass
class Registrar:
    """Registers instances; one per process (it caches series ids).

    Args:
        engine: the registry engine (SQLite or PostgreSQL).
    """

    engine: Engine
    _sessions: sessionmaker[Session] = field(init=False, repr=False)
    _series_ids: dict[str, int] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        dialect = self.engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise RegistryError(f"registry dialect {dialect!r} is not supported")
        self._insert: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert

    def register(
        self,
        header: InstanceHeader,
        path: Path,
        size_bytes: int,
        calling_ae: str | None,
        received_at: datetime | None = None,
    ) -> bool:
        """Upsert the study, series and instance; return True for a new instance.

        Retries a transaction that loses a cross-process race. Raises
        :class:`RegistryError` when the registry keeps refusing.
        """
        delay = 0.005
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                with self._sessions() as session, session.begin():
                    return self._register(
                        session, header, str(path), size_bytes, calling_ae, received_at
                    )
            except (IntegrityError, OperationalError, DBAPIError) as exc:
                self._series_ids.clear()
                if attempt == _MAX_ATTEMPTS or (
                    isinstance(exc, DBAPIError) and exc.connection_invalidated
                ):
                    raise RegistryError(
                        f"study {header.study_uid}: could not register SOPInstanceUID "
                        f"{header.sop_instance_uid} after {attempt} attempt(s): "
                        f"{type(exc.orig).__name__}: {str(exc.orig)[:200]}"
                    ) from exc
                logger.debug(
                    "study %s: registry race (%s), retry %d",
                    header.study_uid,
                    type(exc.orig).__name__,
                    attempt,
                )
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------
    def _register(
        self,
        session: Session,
        header: InstanceHeader,
        path: str,
        size_bytes: int,
        calling_ae: str | None,
        received_at: datetime | None,
    ) -> bool:
        now = received_at or utcnow()
        study_id, state = self._touch_study(session, header, now)
        series_id = self._series_id(session, study_id, header)
        values = {
            "series_id": series_id,
            "sop_class_uid": header.sop_class_uid,
            "transfer_syntax_uid": header.transfer_syntax_uid,
            "path": path,
            "size_bytes": size_bytes,
            "calling_ae": calling_ae,
            "received_at": now,
        }
        inserted = session.execute(
            self._insert(Instance)
            .values(sop_instance_uid=header.sop_instance_uid, **values)
            .on_conflict_do_nothing(index_elements=["sop_instance_uid"])
            .returning(Instance.id)
        ).first()
        is_new = inserted is not None
        if is_new:
            session.execute(
                update(Study)
                .where(Study.id == study_id)
                .values(instance_count=Study.instance_count + 1)
            )
            session.execute(
                update(Series)
                .where(Series.id == series_id)
                .values(instance_count=Series.instance_count + 1)
            )
        else:
            session.execute(
                update(Instance)
                .where(Instance.sop_instance_uid == header.sop_instance_uid)
                .values(**values)
            )
        if state is not StudyState.RECEIVING:
            study = session.get(Study, study_id, populate_existing=True)
            if study is not None and study.state is not StudyState.RECEIVING:
                transition(session, study, StudyState.RECEIVING, REOPEN_DETAIL, at=now)
        return is_new

    def _touch_study(
        self, session: Session, header: InstanceHeader, now: datetime
    ) -> tuple[int, StudyState]:
        """Update ``last_instance_at`` (a write first: SQLite locks up front); create if new."""
        touch = (
            update(Study)
            .where(Study.study_uid == header.study_uid)
            .values(last_instance_at=now, updated_at=now)
            .returning(Study.id, Study.state)
        )
        row = session.execute(touch).first()
        if row is None:
            session.execute(
                self._insert(Study)
                .values(
                    study_uid=header.study_uid,
                    accession=header.accession,
                    modality=header.modality,
                    study_description=header.study_description,
                    body_part=header.body_part,
                    state=StudyState.RECEIVING,
                    version=0,
                    instance_count=0,
                    created_at=now,
                    updated_at=now,
                    last_instance_at=now,
                )
                .on_conflict_do_nothing(index_elements=["study_uid"])
            )
            row = session.execute(touch).first()
            if row is None:
                raise RegistryError(f"study {header.study_uid}: row vanished while registering")
        return int(row[0]), StudyState(row[1])

    def _series_id(self, session: Session, study_id: int, header: InstanceHeader) -> int:
        cached = self._series_ids.get(header.series_uid)
        if cached is not None:
            return cached
        lookup = select(Series.id, Series.study_id).where(Series.series_uid == header.series_uid)
        row = session.execute(lookup).first()
        if row is None:
            session.execute(
                self._insert(Series)
                .values(
                    study_id=study_id,
                    series_uid=header.series_uid,
                    modality=header.modality,
                    series_number=header.series_number,
                    series_description=header.series_description,
                    body_part=header.body_part,
                    instance_count=0,
                )
                .on_conflict_do_nothing(index_elements=["series_uid"])
            )
            row = session.execute(lookup).first()
            if row is None:
                raise RegistryError(f"study {header.study_uid}: series row vanished")
        if int(row[1]) != study_id:
            logger.warning(
                "study %s: SeriesInstanceUID %s is already registered under another study",
                header.study_uid,
                header.series_uid,
            )
        series_id = int(row[0])
        if len(self._series_ids) > 4096:
            self._series_ids.clear()
        self._series_ids[header.series_uid] = series_id
        return series_id
