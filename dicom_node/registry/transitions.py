"""The study state machine: every state change goes through :func:`transition`."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from dicom_node.errors import InvalidTransitionError
from dicom_node.registry.models import (
    ALLOWED_TRANSITIONS,
    Study,
    StudyState,
    StudyTransition,
    utcnow,
)

logger = logging.getLogger(__name__)


def transition(
    session: Session,
    study: Study,
    to_state: StudyState,
    detail: str | None = None,
    at: datetime | None = None,
) -> StudyTransition:
    """Move ``study`` to ``to_state`` and record the timestamped transition.

    The caller commits. Raises :class:`InvalidTransitionError` for a move the
    state machine does not allow (the message names both states and the study).
    """
    from_state = study.state
    if to_state not in ALLOWED_TRANSITIONS[from_state]:
        raise InvalidTransitionError(
            f"study {study.study_uid}: cannot go from {from_state.value!r} to {to_state.value!r}"
        )
    when = at or utcnow()
    study.state = to_state
    study.updated_at = when
    if to_state is StudyState.COMPLETE:
        study.completed_at = when
    record = StudyTransition(
        study=study, from_state=from_state, to_state=to_state, at=when, detail=detail
    )
    session.add(record)
    logger.info(
        "study %s: %s -> %s%s",
        study.study_uid,
        from_state.value,
        to_state.value,
        f" ({detail})" if detail else "",
    )
    return record
