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

from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset, read_partial
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian
from sqlalchemy import Connection, Engine, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

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

#: Every keyword above lives at or before (0020,0011) SeriesNumber: parsing stops there.
_LAST_HEADER_TAG = Tag(0x0020, 0x0011)
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


def _after_last_header_tag(tag: BaseTag, _vr: str | None, _length: int) -> bool:
    return bool(tag > _LAST_HEADER_TAG)


def _looks_like_uid(value: str) -> bool:
    return len(value) <= 64 and all(char.isdigit() or char == "." for char in value)


def _read_head(path: Path, transfer_syntax: str | None) -> tuple[Dataset, str]:
    """The dataset up to (0020,0011) and its transfer syntax.

    With a known ``transfer_syntax`` (the SCP has it from the presentation
    context) the File Meta Information is skipped by its group length and only
    the dataset is parsed; otherwise (and for deflated data) pydicom reads the
    file from the start.
    """
    if transfer_syntax is not None and transfer_syntax != DeflatedExplicitVRLittleEndian:
        syntax = UID(transfer_syntax)
        with open(path, "rb") as handle:
            head = handle.read(144)
            if head[128:140] == b"DICM\x02\x00\x00\x00UL\x04\x00":
                handle.seek(144 + int.from_bytes(head[140:144], "little"))
                dataset = read_dataset(
                    handle,
                    syntax.is_implicit_VR,
                    syntax.is_little_endian,
                    stop_when=_after_last_header_tag,
                )
                return dataset, transfer_syntax
    with open(path, "rb") as handle:
        dataset = read_partial(handle, stop_when=_after_last_header_tag)
    return dataset, str(dataset.file_meta.TransferSyntaxUID)


def read_header(path: Path, transfer_syntax: str | None = None) -> InstanceHeader:
    """Read only :data:`HEADER_KEYWORDS` and the transfer syntax from a DICOM file.

    Parsing stops after (0020,0011), long before the pixel data; nothing else is
    decoded. Pass ``transfer_syntax`` when it is known (the SCP knows it from the
    presentation context) to skip parsing the File Meta Information. Raises
    :class:`HeaderError` (an :class:`InvalidInstanceError`) when the file does
    not parse or a Study/Series/SOP Instance/SOP Class UID is missing or invalid.
    """
    try:
        ds, transfer_syntax = _read_head(path, transfer_syntax)
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


@dataclass(frozen=True)
class _Statements:
    """The registration statements, built once with bind parameters (no per-call SQL build)."""

    touch_study: Any
    insert_study: Any
    touch_series: Any
    insert_series: Any
    insert_instance: Any
    update_instance: Any
    uncount_study: Any
    uncount_series: Any

    @classmethod
    def build(cls, insert: Any) -> _Statements:
        def p(name: str) -> Any:
            return bindparam(f"p_{name}")

        instance_values: dict[str, Any] = {
            "series_id": p("series_id"),
            "sop_class_uid": p("sop_class_uid"),
            "transfer_syntax_uid": p("transfer_syntax_uid"),
            "path": p("path"),
            "size_bytes": p("size_bytes"),
            "calling_ae": p("calling_ae"),
            "received_at": p("now"),
        }
        return cls(
            touch_study=update(Study)
            .where(Study.study_uid == p("study_uid"))
            .values(
                last_instance_at=p("now"),
                updated_at=p("now"),
                instance_count=Study.instance_count + 1,
            )
            .returning(Study.id, Study.state),
            insert_study=insert(Study)
            .values(
                study_uid=p("study_uid"),
                accession=p("accession"),
                modality=p("modality"),
                study_description=p("study_description"),
                body_part=p("body_part"),
                state=StudyState.RECEIVING,
                version=0,
                instance_count=1,
                created_at=p("now"),
                updated_at=p("now"),
                last_instance_at=p("now"),
            )
            .on_conflict_do_nothing(index_elements=["study_uid"])
            .returning(Study.id, Study.state),
            touch_series=update(Series)
            .where(Series.series_uid == p("series_uid"))
            .values(instance_count=Series.instance_count + 1)
            .returning(Series.id, Series.study_id),
            insert_series=insert(Series)
            .values(
                study_id=p("study_id"),
                series_uid=p("series_uid"),
                modality=p("modality"),
                series_number=p("series_number"),
                series_description=p("series_description"),
                body_part=p("body_part"),
                instance_count=1,
            )
            .on_conflict_do_nothing(index_elements=["series_uid"])
            .returning(Series.id, Series.study_id),
            insert_instance=insert(Instance)
            .values(sop_instance_uid=p("sop_instance_uid"), **instance_values)
            .on_conflict_do_nothing(index_elements=["sop_instance_uid"])
            .returning(Instance.id),
            update_instance=update(Instance)
            .where(Instance.sop_instance_uid == p("sop_instance_uid"))
            .values(**instance_values),
            uncount_study=update(Study)
            .where(Study.id == p("study_id"))
            .values(instance_count=Study.instance_count - 1),
            uncount_series=update(Series)
            .where(Series.id == p("series_id"))
            .values(instance_count=Series.instance_count - 1),
        )


@dataclass
class Registrar:
    """Registers instances; one per process (it caches nothing that can go stale).

    Args:
        engine: the registry engine (SQLite or PostgreSQL).
    """

    engine: Engine
    _sql: _Statements = field(init=False, repr=False)

    def __post_init__(self) -> None:
        dialect = self.engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise RegistryError(f"registry dialect {dialect!r} is not supported")
        self._sql = _Statements.build(sqlite.insert if dialect == "sqlite" else postgresql.insert)

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
        params = {
            "p_study_uid": header.study_uid,
            "p_series_uid": header.series_uid,
            "p_sop_instance_uid": header.sop_instance_uid,
            "p_sop_class_uid": header.sop_class_uid,
            "p_transfer_syntax_uid": header.transfer_syntax_uid,
            "p_accession": header.accession,
            "p_modality": header.modality,
            "p_study_description": header.study_description,
            "p_series_description": header.series_description,
            "p_series_number": header.series_number,
            "p_body_part": header.body_part,
            "p_path": str(path),
            "p_size_bytes": size_bytes,
            "p_calling_ae": calling_ae,
            "p_now": received_at or utcnow(),
        }
        delay = 0.005
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                with self.engine.begin() as conn:
                    return self._register(conn, header, params)
            except DBAPIError as exc:
                if attempt == _MAX_ATTEMPTS or exc.connection_invalidated:
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
        raise RegistryError(f"study {header.study_uid}: registration gave up")  # pragma: no cover

    # ------------------------------------------------------------------
    def _register(self, conn: Connection, header: InstanceHeader, params: dict[str, Any]) -> bool:
        # Counts are bumped optimistically (a re-sent instance is rare) and given back
        # below when the instance row already exists: three statements in the common case.
        sql = self._sql
        study_id, state = self._upsert(conn, sql.touch_study, sql.insert_study, params)
        params["p_study_id"] = study_id
        series_id, series_study = self._upsert(conn, sql.touch_series, sql.insert_series, params)
        params["p_series_id"] = series_id
        if series_study != study_id:
            logger.warning(
                "study %s: SeriesInstanceUID %s is already registered under another study",
                header.study_uid,
                header.series_uid,
            )
        is_new = conn.execute(sql.insert_instance, params).first() is not None
        if not is_new:
            conn.execute(sql.update_instance, params)
            conn.execute(sql.uncount_study, params)
            conn.execute(sql.uncount_series, params)
        if StudyState(state) is not StudyState.RECEIVING:
            with Session(bind=conn) as session:
                study = session.get(Study, study_id, populate_existing=True)
                if study is not None and study.state is not StudyState.RECEIVING:
                    transition(
                        session, study, StudyState.RECEIVING, REOPEN_DETAIL, at=params["p_now"]
                    )
                    session.flush()
        return is_new

    @staticmethod
    def _upsert(
        conn: Connection, touch: Any, insert: Any, params: dict[str, Any]
    ) -> tuple[Any, Any]:
        """Touch the row (a write first: SQLite locks up front) or create it; return 2 columns."""
        row = conn.execute(touch, params).first()
        if row is None:
            row = conn.execute(insert, params).first()
            if row is None:  # created by another process since the touch
                row = conn.execute(touch, params).first()
            if row is None:
                raise RegistryError(
                    f"study {params['p_study_uid']}: row vanished while registering"
                )
        return int(row[0]), row[1]
