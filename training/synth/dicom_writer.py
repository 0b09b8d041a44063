"""pydicom MR Image Storage instances for synthetic series (one instance per slice).

IOD: MR Image (PS3.3 A.4), SOP Class 1.2.840.10008.5.1.4.1.1.4, with the Patient,
General Study, Patient Study, General Series, Frame of Reference, General
Equipment, General Acquisition, General Image, Image Plane, Image Pixel,
Contrast/Bolus (when the site fills it), MR Image and SOP Common modules, plus
the vendor private b-value tags. Patients are SYNTHETIC: names and IDs say so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

from training.synth.geometry import SliceGeometry
from training.synth.sites import Protocol, Site

logger = logging.getLogger(__name__)

#: UID root for synthetic objects (pydicom's registered root).
UID_PREFIX = "1.2.826.0.1.3680043.8.498."


def synthetic_uid(*parts: object) -> str:
    """A deterministic UID derived from the given parts (same parts -> same UID)."""
    return str(generate_uid(prefix=UID_PREFIX, entropy_srcs=[str(p) for p in parts]))


@dataclass(frozen=True)
class StudyHeader:
    """Patient and study level values shared by every instance of a study."""

    study_uid: str
    accession: str
    study_id: str
    patient_name: str
    patient_id: str
    birth_date: str
    sex: str
    age: int
    weight_kg: float
    study_date: str
    study_time: str
    study_description: str
    body_part: str
    frame_of_reference_uid: str
    referring: str


@dataclass(frozen=True)
class Frame:
    """One image of a series: its pixels, plane, and per-image header values.

    Attributes:
        pixels: uint16 array [rows, columns].
        geometry: slice stack it belongs to.
        index: slice index in that stack.
        b_value: diffusion b-value (s/mm^2) or None.
        image_type: ImageType values of this image.
        sequence_name: SequenceName of this image ("" to omit).
    """

    pixels: NDArray[np.uint16]
    geometry: SliceGeometry
    index: int
    b_value: float | None
    image_type: tuple[str, ...]
    sequence_name: str


@dataclass(frozen=True)
class SeriesHeader:
    """Series level values.

    Attributes:
        series_uid, series_number, description, protocol_name: General Series values.
        protocol: the acquisition protocol (timing, sequence attributes).
        contrast: contrast agent given before this series.
        series_time: HHMMSS of acquisition.
        derived_from: SeriesInstanceUID of the source series (ADC, minIP), or "".
    """

    series_uid: str
    series_number: int
    description: str
    protocol_name: str
    protocol: Protocol
    contrast: bool
    series_time: str
    derived_from: str = ""


def _ds(value: float) -> str:
    """DS value with at most 16 characters."""
    text = f"{value:.6g}"
    return text if len(text) <= 16 else f"{value:.4e}"


def _window(pixels: NDArray[np.uint16]) -> tuple[float, float]:
    lo, hi = np.percentile(pixels, [1.0, 99.5])
    return float(round((hi + lo) / 2)), float(max(round(hi - lo), 1))


def build_instance(
    study: StudyHeader,
    site: Site,
    series: SeriesHeader,
    frame: Frame,
    instance_number: int,
    n_images: int,
    *,
    bits_stored: int = 16,
    window: tuple[float, float] | None = None,
) -> Dataset:
    """One MR Image Storage dataset (complete, with pixel data and file meta).

    Args:
        study, site, series: study, scanner and series level values.
        frame: the image.
        instance_number: InstanceNumber (1-based); the SOP Instance UID derives from it.
        n_images: ImagesInAcquisition.
        bits_stored: BitsStored (12 or 16), the same for the whole series.
        window: (WindowCenter, WindowWidth); from this image's pixels when None.
    """
    proto = series.protocol
    geom = frame.geometry
    sop_uid = synthetic_uid(series.series_uid, instance_number)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = UID(
        ImplicitVRLittleEndian if site.implicit_vr else ExplicitVRLittleEndian
    )
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "NTSYNTH_1"

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = list(frame.image_type)
    ds.InstanceCreationDate = study.study_date
    ds.InstanceCreationTime = series.series_time
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = study.study_date
    ds.SeriesDate = study.study_date
    ds.AcquisitionDate = study.study_date
    ds.ContentDate = study.study_date
    ds.StudyTime = study.study_time
    ds.SeriesTime = series.series_time
    ds.AcquisitionTime = series.series_time
    ds.ContentTime = series.series_time
    ds.AccessionNumber = study.accession
    ds.Modality = "MR"
    ds.Manufacturer = site.manufacturer
    ds.InstitutionName = site.institution
    ds.ReferringPhysicianName = study.referring
    ds.StationName = site.station
    ds.StudyDescription = study.study_description
    ds.SeriesDescription = series.description
    ds.ManufacturerModelName = site.model
    if series.derived_from:
        ds.DerivationDescription = "synthetic derivation from source series"
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = study.birth_date
    ds.PatientSex = study.sex
    ds.PatientAge = f"{study.age:03d}Y"
    ds.PatientWeight = _ds(study.weight_kg)
    if series.contrast and site.contrast_agent:
        ds.ContrastBolusAgent = site.contrast_agent[
            int(sum(map(ord, study.accession))) % len(site.contrast_agent)
        ]
        ds.ContrastBolusRoute = "IV"
        ds.ContrastBolusVolume = "7.5"
    ds.BodyPartExamined = study.body_part
    if not study.body_part:
        # unknown body part: Laterality (2C) must then be present, empty (dciodvfy)
        ds.Laterality = ""
    ds.ScanningSequence = list(proto.scanning_sequence)
    ds.SequenceVariant = [v for v in proto.sequence_variant if v] or "NONE"
    ds.ScanOptions = [o for o in proto.scan_options if o] or ""
    ds.MRAcquisitionType = proto.acq_type
    if frame.sequence_name:
        ds.SequenceName = frame.sequence_name
    ds.AngioFlag = "N"
    ds.SliceThickness = _ds(geom.thickness)
    ds.RepetitionTime = _ds(proto.params.tr)
    ds.EchoTime = _ds(proto.params.te)
    if proto.params.ti > 0 and "IR" in proto.scanning_sequence:
        ds.InversionTime = _ds(proto.params.ti)
    ds.NumberOfAverages = "1"
    ds.ImagingFrequency = _ds(42.577478 * site.field_t)
    ds.ImagedNucleus = "1H"
    ds.EchoNumbers = "1"
    ds.MagneticFieldStrength = _ds(site.field_t)
    ds.SpacingBetweenSlices = _ds(geom.slice_spacing)
    ds.NumberOfPhaseEncodingSteps = str(proto.acq_matrix[1])
    ds.EchoTrainLength = str(proto.etl)
    ds.PercentSampling = "100"
    ds.PercentPhaseFieldOfView = _ds(100.0 * proto.fov[1] / proto.fov[0])
    ds.PixelBandwidth = _ds(proto.bandwidth)
    ds.DeviceSerialNumber = f"SYN{sum(map(ord, site.name)):05d}"
    ds.SoftwareVersions = site.software
    ds.ProtocolName = series.protocol_name
    ds.TransmitCoilName = "Body"
    ds.AcquisitionMatrix = [proto.acq_matrix[0], 0, 0, proto.acq_matrix[1]]
    ds.InPlanePhaseEncodingDirection = "ROW" if geom.plane == "AX" else "COL"
    ds.FlipAngle = _ds(proto.params.flip)
    ds.VariableFlipAngleFlag = "N"
    ds.PatientPosition = "HFS"
    if frame.b_value is not None and site.diffusion.standard_b_tag:
        ds.DiffusionBValue = float(frame.b_value)
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = series.series_uid
    ds.StudyID = study.study_id
    ds.SeriesNumber = series.series_number
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = instance_number
    position = geom.slice_position(frame.index)
    ds.ImagePositionPatient = [_ds(v) for v in position]
    ds.ImageOrientationPatient = [_ds(v) for v in geom.iop()]
    ds.FrameOfReferenceUID = study.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = _ds(float(position @ geom.normal))
    ds.ImagesInAcquisition = n_images
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = int(frame.pixels.shape[0])
    ds.Columns = int(frame.pixels.shape[1])
    ds.PixelSpacing = [_ds(geom.row_spacing), _ds(geom.col_spacing)]
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    center, width = window or _window(frame.pixels)
    ds.WindowCenter = _ds(center)
    ds.WindowWidth = _ds(width)
    if frame.b_value is not None:
        _private_b_value(ds, site, frame.b_value)
    ds.PixelData = np.ascontiguousarray(frame.pixels, dtype="<u2").tobytes()
    return ds


def _private_b_value(ds: Dataset, site: Site, b_value: float) -> None:
    """Vendor private b-value tags (as the vendors write them)."""
    style = site.diffusion.private_b
    if style == "siemens":
        block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
        block.add_new(0x0C, "IS", int(b_value))
    elif style == "ge":
        block = ds.private_block(0x0043, "GEMS_PARM_01", create=True)
        block.add_new(0x39, "IS", [1_000_000_000 + int(b_value), 0, 0, 0])
    elif style == "philips":
        block = ds.private_block(0x2001, "Philips Imaging DD 001", create=True)
        block.add_new(0x03, "FL", float(b_value))


def build_series_datasets(
    study: StudyHeader, site: Site, series: SeriesHeader, frames: list[Frame]
) -> list[Dataset]:
    """All instances of one series, instance numbers 1..N in frame order.

    Instances that share plane, b-value and image type are shallow copies of the
    previous one with the per-image values replaced (much faster than building
    ~90 elements per image).
    """
    peak = max(int(f.pixels.max(initial=0)) for f in frames)
    bits = 16 if peak > 4095 else 12
    window = _window(np.stack([f.pixels[::4, ::4] for f in frames]))
    out: list[Dataset] = []
    template: Dataset | None = None
    key: tuple[object, ...] | None = None
    for i, frame in enumerate(frames):
        frame_key = (id(frame.geometry), frame.b_value, frame.image_type, frame.sequence_name)
        if template is None or frame_key != key:
            template = build_instance(
                study, site, series, frame, i + 1, len(frames), bits_stored=bits, window=window
            )
            key = frame_key
            out.append(template)
            continue
        out.append(_next_instance(template, series, frame, i + 1))
    return out


def _next_instance(template: Dataset, series: SeriesHeader, frame: Frame, number: int) -> Dataset:
    """A copy of ``template`` for another slice of the same stack.

    The element objects are shared with the template except those replaced here
    with new elements (``add_new``): assigning attributes would change the shared
    elements in place.
    """
    ds = Dataset(dict(template))
    ds.file_meta = FileMetaDataset(dict(template.file_meta))
    sop_uid = synthetic_uid(series.series_uid, number)
    ds.file_meta.add_new(0x00020003, "UI", sop_uid)  # MediaStorageSOPInstanceUID
    ds.add_new(0x00080018, "UI", sop_uid)  # SOPInstanceUID
    ds.add_new(0x00200013, "IS", number)  # InstanceNumber
    geom = frame.geometry
    position = geom.slice_position(frame.index)
    ds.add_new(0x00200032, "DS", [_ds(v) for v in position])  # ImagePositionPatient
    ds.add_new(0x00201041, "DS", _ds(float(position @ geom.normal)))  # SliceLocation
    pixels = np.ascontiguousarray(frame.pixels, dtype="<u2").tobytes()
    ds.add_new(0x7FE00010, "OW", pixels)  # PixelData
    return ds


def write_datasets(datasets: list[Dataset], folder: Path, implicit_vr: bool) -> list[Path]:
    """Write instances as DICOM Part 10 files ``IM_00001.dcm``... into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in datasets:
        path = folder / f"IM_{int(ds.InstanceNumber):05d}.dcm"
        ds.save_as(path, implicit_vr=implicit_vr, little_endian=True, enforce_file_format=True)
        paths.append(path)
    return paths
