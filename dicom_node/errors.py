"""One place for the node's exceptions (pydicom's ``errors.py`` habit).

Every message names the attribute or setting at fault and the value seen, and
never contains patient-identifying data.
"""

from __future__ import annotations


class DicomNodeError(Exception):
    """Base class of every error the node raises on purpose."""


class ConfigError(DicomNodeError):
    """A setting is missing or has a value that cannot be used."""


class StorageError(DicomNodeError):
    """An instance could not be written durably."""


class OutOfResourcesError(StorageError):
    """Free disk space is below the configured watermark."""


class InvalidInstanceError(DicomNodeError):
    """A received dataset cannot be parsed or lacks a required UID."""


class RegistryError(DicomNodeError):
    """The study registry refused an operation (e.g. an invalid state transition)."""


class InvalidTransitionError(RegistryError):
    """A study was asked to move to a state it cannot reach from its current one."""


class TransientError(DicomNodeError):
    """A failure that may go away by itself (peer or registry briefly down): retry later."""


class DeliveryError(DicomNodeError):
    """An object could not be sent to a destination."""


class TransientDeliveryError(DeliveryError, TransientError):
    """Delivery failed for a reason that may go away (peer down, timeout): retry."""


class PermanentDeliveryError(DeliveryError):
    """Delivery failed for a reason that retrying will not fix (rejected SOP class)."""


class BundleError(DicomNodeError):
    """A model bundle is missing, corrupted or does not match its manifest."""


class TrainingError(DicomNodeError):
    """Training, preparation or evaluation cannot go on with the data or settings given."""


class ResultsError(DicomNodeError):
    """A DICOM result object (SR, secondary capture) cannot be built or parsed."""


class SeriesError(DicomNodeError):
    """A series cannot be read, classified, selected or loaded as asked."""


class VolumeGeometryError(SeriesError):
    """The images of a series do not form one regular 3D volume (missing slice, uneven
    spacing, mixed orientations or duplicate positions)."""
