"""Study registry: SQLAlchemy 2 models, the study state machine and sessions."""

from dicom_node.registry.db import create_registry_engine, init_registry, session_factory
from dicom_node.registry.models import (
    AnalysisJob,
    Base,
    Delivery,
    DeliveryState,
    Instance,
    JobState,
    Series,
    Study,
    StudyState,
    StudyTransition,
)

__all__ = [
    "AnalysisJob",
    "Base",
    "Delivery",
    "DeliveryState",
    "Instance",
    "JobState",
    "Series",
    "Study",
    "StudyState",
    "StudyTransition",
    "create_registry_engine",
    "init_registry",
    "session_factory",
]
