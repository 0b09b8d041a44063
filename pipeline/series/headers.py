"""A typed summary of the headers of one MR series (classic or Enhanced MR multi-frame).

:func:`header_from_datasets` reads what the classifier and the selector need
from the images of one series: the MR acquisition attributes of the *MR Image*
module (C.8.3.1: ScanningSequence, SequenceVariant, ScanOptions,
MRAcquisitionType, SequenceName, EchoTime, RepetitionTime, InversionTime,
FlipAngle), ImageType, the contrast attributes (ContrastBolusAgent, or the
*Enhanced Contrast/Bolus* sequence), the diffusion b-values (the standard
DiffusionBValue (0018,9087), the MR Diffusion functional group of Enhanced MR
images (C.8.13.5.9), or the vendors' private elements), geometry, counts and
acquisition time.

Enhanced MR images (C.8.13) keep these attributes in functional groups: the
shared group (5200,9229) and one per-frame group (5200,9230) item per frame;
:func:`frame_attribute` looks in the per-frame item first, then in the shared
one.
"""

from __future__ import annotations

import logging
import math
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from dicom_node.errors import SeriesError

logger = logging.getLogger(__name__)

#: The b-value the models expect (s/mm²) and the window of b-values accepted for it.
TARGET_B_VALUE = 1000.0
B_VALUE_WINDOW = (500.0, 2000.0)

#: Functional-group sequences holding each attribute in Enhanced MR images.
_FRAME_GROUPS: dict[str, tuple[str, ...]] = {
    "ImageOrientationPatient": ("PlaneOrientationSequence",),
    "ImagePositionPatient": ("PlanePositionSequence",),
    "PixelSpacing": ("PixelMeasuresSequence",),
    "SliceThickness": ("PixelMeasuresSequence",),
    "SpacingBetweenSlices": ("PixelMeasuresSequence",),
    "EffectiveEchoTime": ("MREchoSequence",),
    "RepetitionTime": ("MRTimingAndRelatedParametersSequence",),
    "FlipAngle": ("MRTimingAndRelatedParametersSequence",),
    "InversionTimes": ("MRModifierSequence",),
    "InversionRecovery": ("MRModifierSequence",),
    "DiffusionBValue": ("MRDiffusionSequence",),
    "DiffusionDirectionality": ("MRDiffusionSequence",),
    "FrameType": ("MRImageFrameTypeSequence",),
    "RescaleSlope": ("PixelValueTransformationSequence",),
    "RescaleIntercept": ("PixelValueTransformationSequence",),
    "FrameAcquisitionDateTime": ("FrameContentSequence",),
    "ContrastBolusAgentAdministered": ("ContrastBolusUsageSequence",),
}

#: Vendor private b-value elements: (group, element, vendor). GE keeps it as the
#: first value of (0043,xx39) "Slop_int_6..9", Siemens as (0019,xx0C) "B_value",
#: Philips as (2001,xx03) "Diffusion_B_Factor" (dcm2niix, Dicomifier).
_PRIVATE_B_VALUE_TAGS: tuple[tuple[int, int, str], ...] = (
    (0x0043, 0x1039, "GE"),
    (0x0019, 0x100C, "SIEMENS"),
    (0x2001, 0x1003, "PHILIPS"),
)

_VENDORS: tuple[tuple[str, str], ...] = (
    ("SIEMENS", "SIEMENS"),
    ("GE ", "GE"),
    ("GE MEDICAL", "GE"),
    ("GEMS", "GE"),
    ("PHILIPS", "PHILIPS"),
    ("TOSHIBA", "CANON"),
    ("CANON", "CANON"),
    ("HITACHI", "HITACHI"),
    ("FUJIFILM", "HITACHI"),
)


@dataclass(frozen=True)
class Frame:
    """One 2D image of a series: a classic instance, or one frame of a multi-frame one.

    Attributes:
        dataset: the instance.
        index: the 0-based frame number in a multi-frame instance, ``None`` for a
            single-frame instance.
    """

    dataset: Dataset
    index: int | None = None

    def attribute(self, keyword: str) -> Any:
        """The value of ``keyword`` for this frame (functional groups first), or ``None``."""
        return frame_attribute(self.dataset, keyword, self.index)


def frame_attribute(ds: Dataset, keyword: str, frame: int | None = None) -> Any:
    """Look ``keyword`` up for one frame: per-frame group, shared group, then top level.

    Args:
        ds: a dataset (classic or Enhanced MR).
        keyword: a DICOM keyword, e.g. ``"ImagePositionPatient"``.
        frame: 0-based frame index for multi-frame instances.

    Returns:
        The element value, or ``None`` when absent or empty.
    """
    groups = _FRAME_GROUPS.get(keyword, ())
    containers: list[Dataset] = []
    if frame is not None and "PerFrameFunctionalGroupsSequence" in ds:
        per_frame = ds.PerFrameFunctionalGroupsSequence
        if frame < len(per_frame):
            containers.append(per_frame[frame])
    if "SharedFunctionalGroupsSequence" in ds and len(ds.SharedFunctionalGroupsSequence):
        containers.append(ds.SharedFunctionalGroupsSequence[0])
    for container in containers:
        for group in groups:
            seq = container.get(group)
            if seq:
                value = seq[0].get(keyword)
                if value is not None and value != "":
                    return value
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    return value


def frames_of(ds: Dataset) -> list[Frame]:
    """The 2D frames of one instance (one for classic images)."""
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    if n_frames > 1 or "PerFrameFunctionalGroupsSequence" in ds:
        return [Frame(ds, i) for i in range(n_frames)]
    return [Frame(ds, None)]


def _tokens(value: Any) -> tuple[str, ...]:
    """A multi-valued code string as upper-case tokens (``None`` -> ``()``)."""
    if value is None:
        return ()
    if isinstance(value, str):
        items: Iterable[Any] = value.split("\\")
    elif isinstance(value, MultiValue | list | tuple):
        items = value
    else:
        items = [value]
    return tuple(str(item).strip().upper() for item in items if str(item).strip())


def _float(value: Any) -> float | None:
    """A numeric element as float, first value of multi-valued ones; ``None`` if absent."""
    if value is None or value == "":
        return None
    if isinstance(value, MultiValue | list | tuple):
        if not value:
            return None
        value = value[0]
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def vendor_of(manufacturer: str) -> str:
    """Normalise Manufacturer (0008,0070) to SIEMENS / GE / PHILIPS / CANON / HITACHI / UNKNOWN."""
    upper = f"{manufacturer.upper()} "
    for needle, vendor in _VENDORS:
        if needle in upper:
            return vendor
    return "UNKNOWN"


def _decode_private(value: Any, vr: str) -> float | None:
    """A private numeric value that may arrive as text, number or raw bytes (VR UN)."""
    if isinstance(value, bytes):
        text = value.rstrip(b"\x00 ")
        if re.fullmatch(rb"[\s0-9+\-.eE\\]+", text or b"x"):
            return _float(text.decode("ascii").split("\\")[0])
        if len(value) == 4:
            return float(struct.unpack("<f", value)[0])
        if len(value) == 8:
            return float(struct.unpack("<d", value)[0])
        return None
    return _float(value)


def private_b_value(ds: Dataset, vendor: str) -> float | None:
    """The b-value (s/mm²) from a vendor's private element, if present.

    GE writes some b-values with an offset of 10^9 in (0043,1039); it is removed.
    """
    for group, element, tag_vendor in _PRIVATE_B_VALUE_TAGS:
        if vendor not in (tag_vendor, "UNKNOWN"):
            continue
        elem = ds.get((group, element))
        if elem is None:
            continue
        value = _decode_private(elem.value, elem.VR)
        if value is None:
            continue
        if tag_vendor == "GE" and value >= 1e9:
            value = value % 1e9
        if 0 <= value < 1e5:
            return value
    return None


def frame_b_value(frame: Frame, vendor: str) -> float | None:
    """The b-value of one frame: standard tag (or MR Diffusion group), else private tag."""
    value = _float(frame.attribute("DiffusionBValue"))
    if value is not None:
        return value
    return private_b_value(frame.dataset, vendor)


def plane_of(iop: Sequence[float] | None) -> str:
    """AXIAL / SAGITTAL / CORONAL / OBLIQUE (or UNKNOWN) from ImageOrientationPatient.

    A plane is named after the LPS axis its normal is closest to; more than
    30 degrees away from every axis is OBLIQUE.
    """
    if iop is None or len(iop) != 6:
        return "UNKNOWN"
    normal = np.cross(np.asarray(iop[:3], float), np.asarray(iop[3:], float))
    norm = float(np.linalg.norm(normal))
    if norm < 1e-6:
        return "UNKNOWN"
    normal = np.abs(normal / norm)
    axis = int(np.argmax(normal))
    if normal[axis] < math.cos(math.radians(30)):
        return "OBLIQUE"
    return ("SAGITTAL", "CORONAL", "AXIAL")[axis]


def _seconds(time_value: Any) -> float | None:
    """HHMMSS.ffffff (TM) or YYYYMMDDHHMMSS (DT) as seconds since midnight."""
    text = _text(time_value)
    if not text:
        return None
    if len(text) >= 14 and text[:8].isdigit() and "." not in text[:8]:
        text = text[8:]
    match = re.match(r"(\d{2})(\d{2})?(\d{2})?(\.\d+)?", text.replace(":", ""))
    if not match:
        return None
    hours, minutes, secs, frac = match.groups()
    return (
        int(hours) * 3600 + int(minutes or 0) * 60 + int(secs or 0) + (float(frac) if frac else 0.0)
    )


@dataclass(frozen=True)
class SeriesHeader:
    """What the classifier and the selector know about one series.

    Times are in ms (DICOM units); ``b_values`` are the distinct b-values
    (s/mm²) found in tags; ``planes`` the distinct image planes seen.
    """

    series_uid: str = ""
    study_uid: str = ""
    series_number: int | None = None
    modality: str = "MR"
    sop_class_uid: str = ""
    vendor: str = "UNKNOWN"
    series_description: str = ""
    protocol_name: str = ""
    sequence_name: str = ""
    scanning_sequence: tuple[str, ...] = ()
    sequence_variant: tuple[str, ...] = ()
    scan_options: tuple[str, ...] = ()
    mr_acquisition_type: str = ""
    echo_time: float | None = None
    repetition_time: float | None = None
    inversion_time: float | None = None
    flip_angle: float | None = None
    image_type: tuple[str, ...] = ()
    contrast_agent: str = ""
    angio_flag: bool = False
    b_values: tuple[float, ...] = ()
    diffusion_directionality: tuple[str, ...] = ()
    planes: tuple[str, ...] = ()
    slice_thickness: float | None = None
    pixel_spacing: tuple[float, float] | None = None
    rows: int | None = None
    columns: int | None = None
    n_instances: int = 0
    n_frames: int = 0
    acquisition_time: float | None = None
    enhanced: bool = False

    @property
    def description(self) -> str:
        """SeriesDescription and ProtocolName together (the free-text signal)."""
        if self.protocol_name and self.protocol_name != self.series_description:
            return f"{self.series_description} | {self.protocol_name}"
        return self.series_description

    @property
    def plane(self) -> str:
        """The single plane of the series, ``MULTIPLE`` when it mixes planes."""
        if not self.planes:
            return "UNKNOWN"
        return self.planes[0] if len(self.planes) == 1 else "MULTIPLE"

    @property
    def is_derived(self) -> bool:
        """ImageType value 1 is DERIVED (C.7.6.1.1.2)."""
        return bool(self.image_type) and self.image_type[0] == "DERIVED"

    @property
    def is_3d(self) -> bool:
        """MRAcquisitionType is 3D."""
        return self.mr_acquisition_type.upper() == "3D"

    @property
    def is_isotropic(self) -> bool:
        """3D with slices no thicker than 1.5 times the in-plane pixel size."""
        if not self.is_3d or self.slice_thickness is None or self.pixel_spacing is None:
            return False
        return self.slice_thickness <= 1.5 * max(self.pixel_spacing)


def _first_present(datasets: Sequence[Dataset], keyword: str) -> Any:
    for ds in datasets:
        value = ds.get(keyword)
        if value is not None and value != "":
            return value
    return None


def _contrast_agent(ds: Dataset) -> str:
    agent = _text(ds.get("ContrastBolusAgent"))
    if agent:
        return agent
    for item in ds.get("ContrastBolusAgentSequence") or []:
        meaning = _text(item.get("CodeMeaning"))
        if meaning:
            return meaning
    return ""


def _image_type(ds: Dataset) -> tuple[str, ...]:
    tokens = _tokens(ds.get("ImageType"))
    if "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds:
        frame_type = _tokens(frame_attribute(ds, "FrameType", 0))
        tokens = tokens + tuple(t for t in frame_type if t not in tokens)
    return tokens


def header_from_datasets(datasets: Sequence[Dataset]) -> SeriesHeader:
    """Summarise the images of one series into a :class:`SeriesHeader`.

    Args:
        datasets: the instances of one series (pixel data not needed: files read
            with ``stop_before_pixels=True`` are enough).

    Raises:
        SeriesError: if ``datasets`` is empty or mixes Series Instance UIDs.
    """
    if not datasets:
        raise SeriesError("a series needs at least one dataset; got none")
    uids = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    if len(uids) > 1:
        raise SeriesError(f"datasets mix SeriesInstanceUID values {sorted(uids)}")
    first = datasets[0]
    vendor = vendor_of(_text(_first_present(datasets, "Manufacturer")))
    frames = [frame for ds in datasets for frame in frames_of(ds)]
    enhanced = any("PerFrameFunctionalGroupsSequence" in ds for ds in datasets)

    b_values: set[float] = set()
    directionality: set[str] = set()
    planes: list[str] = []
    times: list[float] = []
    for frame in frames:
        b_value = frame_b_value(frame, vendor)
        if b_value is not None:
            b_values.add(round(b_value, 1))
        direction = frame.attribute("DiffusionDirectionality")
        if direction:
            directionality.add(str(direction).upper())
        iop = frame.attribute("ImageOrientationPatient")
        plane = plane_of([float(v) for v in iop] if iop is not None else None)
        if plane != "UNKNOWN" and plane not in planes:
            planes.append(plane)
        seconds = _seconds(frame.attribute("FrameAcquisitionDateTime"))
        if seconds is None:
            ds = frame.dataset
            seconds = _seconds(
                ds.get("AcquisitionTime") or ds.get("AcquisitionDateTime") or ds.get("SeriesTime")
            )
        if seconds is not None:
            times.append(seconds)

    inversion = _float(frame_attribute(first, "InversionTime"))
    if inversion is None:
        inversion = _float(frame_attribute(first, "InversionTimes", 0))
    echo = _float(frame_attribute(first, "EchoTime"))
    if echo is None:
        echo = _float(frame_attribute(first, "EffectiveEchoTime", 0))
    scanning = _tokens(first.get("ScanningSequence"))
    if not scanning and enhanced:
        scanning = _enhanced_scanning_sequence(first)
    spacing = frame_attribute(first, "PixelSpacing", 0)
    series_number = first.get("SeriesNumber")
    return SeriesHeader(
        series_uid=_text(first.get("SeriesInstanceUID")),
        study_uid=_text(first.get("StudyInstanceUID")),
        series_number=int(series_number) if series_number not in (None, "") else None,
        modality=_text(first.get("Modality")) or "MR",
        sop_class_uid=_text(first.get("SOPClassUID")),
        vendor=vendor,
        series_description=_text(first.get("SeriesDescription")),
        protocol_name=_text(first.get("ProtocolName")),
        sequence_name=_text(first.get("SequenceName") or first.get("PulseSequenceName")),
        scanning_sequence=scanning,
        sequence_variant=_tokens(first.get("SequenceVariant")),
        scan_options=_tokens(first.get("ScanOptions")),
        mr_acquisition_type=_text(first.get("MRAcquisitionType")).upper(),
        echo_time=echo,
        repetition_time=_float(frame_attribute(first, "RepetitionTime", 0)),
        inversion_time=inversion,
        flip_angle=_float(frame_attribute(first, "FlipAngle", 0)),
        image_type=_image_type(first),
        contrast_agent=_contrast_agent(first),
        angio_flag=_text(first.get("AngioFlag")).upper() == "Y",
        b_values=tuple(sorted(b_values)),
        diffusion_directionality=tuple(sorted(directionality)),
        planes=tuple(planes),
        slice_thickness=_float(frame_attribute(first, "SliceThickness", 0)),
        pixel_spacing=(float(spacing[0]), float(spacing[1])) if spacing is not None else None,
        rows=int(first.Rows) if "Rows" in first else None,
        columns=int(first.Columns) if "Columns" in first else None,
        n_instances=len(datasets),
        n_frames=len(frames),
        acquisition_time=min(times) if times else None,
        enhanced=enhanced,
    )


def _enhanced_scanning_sequence(ds: Dataset) -> tuple[str, ...]:
    """ScanningSequence-like tokens from the Enhanced MR attributes (C.8.13.4)."""
    tokens: list[str] = []
    echo = _text(ds.get("EchoPulseSequence")).upper()
    if echo in ("SPIN", "BOTH"):
        tokens.append("SE")
    if echo in ("GRADIENT", "BOTH"):
        tokens.append("GR")
    if _text(frame_attribute(ds, "InversionRecovery", 0)).upper() == "YES":
        tokens.append("IR")
    if _text(ds.get("EchoPlanarPulseSequence")).upper() == "YES":
        tokens.append("EP")
    return tuple(tokens)
