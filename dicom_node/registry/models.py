"""Registry tables: studies, series, instances, analysis jobs, deliveries.

A study moves through explicit states (see :data:`ALLOWED_TRANSITIONS`); every
transition is stored in ``study_transitions`` with its timestamp.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class StudyState(enum.StrEnum):
    RECEIVING = "receiving"
    COMPLETE = "complete"
    QUEUED = "queued"
    ANALYSING = "analysing"
    RESULTS_READY = "results_ready"
    DELIVERED = "delivered"
    FAILED = "failed"
    NOT_ANALYSED = "not_analysed"


#: Which state a study may move to from each state. New instances re-open a
#: study from any state (``RECEIVING``), which starts a new analysis version.
ALLOWED_TRANSITIONS: dict[StudyState, frozenset[StudyState]] = {
    StudyState.RECEIVING: frozenset({StudyState.COMPLETE}),
    StudyState.COMPLETE: frozenset(
        {StudyState.QUEUED, StudyState.NOT_ANALYSED, StudyState.RECEIVING}
    ),
    StudyState.QUEUED: frozenset({StudyState.ANALYSING, StudyState.FAILED, StudyState.RECEIVING}),
    StudyState.ANALYSING: frozenset(
        {StudyState.RESULTS_READY, StudyState.FAILED, StudyState.NOT_ANALYSED, StudyState.RECEIVING}
    ),
    StudyState.RESULTS_READY: frozenset(
        {StudyState.DELIVERED, StudyState.FAILED, StudyState.RECEIVING}
    ),
    StudyState.DELIVERED: frozenset({StudyState.RECEIVING}),
    StudyState.FAILED: frozenset({StudyState.RECEIVING, StudyState.QUEUED}),
    StudyState.NOT_ANALYSED: frozenset({StudyState.RECEIVING, StudyState.DELIVERED}),
}


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    NOT_ANALYSED = "not_analysed"
    FAILED = "failed"
    SUPERSEDED = "superseded"


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    DELIVERED = "delivered"
    FAILED = "failed"


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON}


_TZ = DateTime(timezone=True)


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_uid: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    accession: Mapped[str | None] = mapped_column(String(64))
    modality: Mapped[str | None] = mapped_column(String(16))
    study_description: Mapped[str | None] = mapped_column(String(128))
    body_part: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[StudyState] = mapped_column(
        Enum(StudyState, native_enum=False, length=32), default=StudyState.RECEIVING, index=True
    )
    #: Analysis version: 1 for the first dispatch, +1 for each re-analysis.
    version: Mapped[int] = mapped_column(Integer, default=0)
    instance_count: Mapped[int] = mapped_column(Integer, default=0)
    not_analysed_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(_TZ, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(_TZ, default=utcnow, onupdate=utcnow)
    last_instance_at: Mapped[datetime] = mapped_column(_TZ, default=utcnow, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(_TZ)

    series: Mapped[list[Series]] = relationship(
        back_populates="study", cascade="all, delete-orphan"
    )
    transitions: Mapped[list[StudyTransition]] = relationship(
        back_populates="study", cascade="all, delete-orphan", order_by="StudyTransition.id"
    )
    jobs: Mapped[list[AnalysisJob]] = relationship(
        back_populates="study", cascade="all, delete-orphan", order_by="AnalysisJob.version"
    )
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="study", cascade="all, delete-orphan", order_by="Delivery.id"
    )


class StudyTransition(Base):
    __tablename__ = "study_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[StudyState | None] = mapped_column(
        Enum(StudyState, native_enum=False, length=32)
    )
    to_state: Mapped[StudyState] = mapped_column(Enum(StudyState, native_enum=False, length=32))
    at: Mapped[datetime] = mapped_column(_TZ, default=utcnow)
    detail: Mapped[str | None] = mapped_column(Text)

    study: Mapped[Study] = relationship(back_populates="transitions")


class Series(Base):
    __tablename__ = "series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    series_uid: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    modality: Mapped[str | None] = mapped_column(String(16))
    series_number: Mapped[int | None] = mapped_column(Integer)
    series_description: Mapped[str | None] = mapped_column(String(128))
    body_part: Mapped[str | None] = mapped_column(String(64))
    instance_count: Mapped[int] = mapped_column(Integer, default=0)

    study: Mapped[Study] = relationship(back_populates="series")
    instances: Mapped[list[Instance]] = relationship(
        back_populates="series", cascade="all, delete-orphan"
    )


class Instance(Base):
    __tablename__ = "instances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    calling_ae: Mapped[str | None] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(_TZ, default=utcnow)

    series: Mapped[Series] = relationship(back_populates="instances")


class AnalysisJob(Base):
    """One analysis of one version of a study (a re-analysis is a new row)."""

    __tablename__ = "analysis_jobs"
    __table_args__ = (UniqueConstraint("study_id", "version", name="uq_job_study_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[JobState] = mapped_column(
        Enum(JobState, native_enum=False, length=32), default=JobState.QUEUED
    )
    celery_task_id: Mapped[str | None] = mapped_column(String(64))
    worker: Mapped[str | None] = mapped_column(String(128))
    model_name: Mapped[str | None] = mapped_column(String(128))
    model_version: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(_TZ, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(_TZ)
    finished_at: Mapped[datetime | None] = mapped_column(_TZ)
    duration_s: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    #: Per-finding scores, calls, triage, sequences used (written by the analysis task).
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Seconds per stage: load, preprocess, encode, score, heatmaps, write, send.
    stage_timings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: SOP Instance UID of the SR this job wrote (the next version references it).
    sr_sop_instance_uid: Mapped[str | None] = mapped_column(String(64))

    study: Mapped[Study] = relationship(back_populates="jobs")


class Delivery(Base):
    """Durable outbox row: one object to one destination."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("sop_instance_uid", "destination", name="uq_delivery_object_destination"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("analysis_jobs.id", ondelete="SET NULL"))
    path: Mapped[str] = mapped_column(Text)
    sop_instance_uid: Mapped[str] = mapped_column(String(64))
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64))
    destination: Mapped[str] = mapped_column(String(128))
    state: Mapped[DeliveryState] = mapped_column(
        Enum(DeliveryState, native_enum=False, length=32), default=DeliveryState.PENDING, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(_TZ, default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(_TZ, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(_TZ)

    study: Mapped[Study] = relationship(back_populates="deliveries")
