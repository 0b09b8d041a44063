"""Build small MR DICOM series from a numpy volume with known geometry.

Used by the tests, the load benchmark and demos: a volume whose voxel world
positions are known exactly is written as classic single-frame MR images
(MR Image IOD, C.8.3.1) or as one Enhanced MR multi-frame instance (C.8.13,
per-frame functional groups), optionally with shuffled instance numbers and a
compressed transfer syntax, and the loader must give it back.

The objects carry what the loader and the classifier read, not complete IODs
(dciodvfy reports missing Type 1/2 attributes of the Patient, Study and
Equipment modules): they are test inputs, never to be sent to a PACS. The
synthetic generator (``training.synth``) makes complete studies.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

#: Enhanced MR Image Storage.
ENHANCED_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"


def rotation(axis: str, degrees: float) -> NDArray[np.float64]:
    """A 3x3 rotation about the LPS ``axis`` (x, y or z)."""
    t = np.radians(degrees)
    c, s = np.cos(t), np.sin(t)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


#: Direction matrices (columns: row dir, column dir, slice normal) of the standard planes.
PLANES: dict[str, NDArray[np.float64]] = {
    "axial": np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]]),
    "coronal": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),
    "sagittal": np.array([[0.0, 0, -1], [1, 0, 0], [0, -1, 0]]),
}
PLANES["oblique"] = rotation("x", 20.0) @ rotation("z", 12.0) @ PLANES["axial"]


def _base(
    header: Mapping[str, Any], study_uid: str, series_uid: str, sop_class: str, rows: int, cols: int
) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = header.get("FrameOfReferenceUID", generate_uid())
    ds.Modality = "MR"
    ds.PatientName = "Synthetic^Series"
    ds.PatientID = "SYN0001"
    ds.StudyDate = "20260101"
    ds.SeriesNumber = 1
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    for keyword, value in header.items():
        setattr(ds, keyword, value)
    return ds


def _file_meta(ds: Dataset) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta


def _positions(
    n: int, spacing: Sequence[float], origin: Sequence[float], direction: NDArray[np.float64]
) -> list[list[float]]:
    normal = direction[:, 2]
    return [list(np.asarray(origin, float) + k * spacing[2] * normal) for k in range(n)]


def _iop(direction: NDArray[np.float64]) -> list[float]:
    return [float(v) for v in (*direction[:, 0], *direction[:, 1])]


def make_mr_series(
    array: NDArray[Any],
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    direction: NDArray[np.float64] | None = None,
    header: Mapping[str, Any] | None = None,
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
    shuffle_seed: int | None = None,
    frame_header: Sequence[Mapping[str, Any]] | None = None,
) -> list[Dataset]:
    """Classic single-frame MR images of ``array`` (k, j, i) with the given geometry.

    Args:
        array: voxel values (non-negative integers < 65536), indexed (slice, row, column).
        spacing: (column, row, slice) spacing in mm.
        origin: LPS position of voxel [0, 0, 0].
        direction: 3x3, columns = row direction, column direction, slice normal.
        header: extra attributes by keyword (SeriesDescription, EchoTime ...).
        shuffle_seed: when given, InstanceNumbers are assigned in a shuffled order
            and the datasets are returned in that order.
        frame_header: per-slice extra attributes (e.g. DiffusionBValue).
    """
    direction = PLANES["axial"] if direction is None else np.asarray(direction, float)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    n, rows, cols = array.shape
    datasets = []
    for k, ipp in enumerate(_positions(n, spacing, origin, direction)):
        ds = _base(header or {}, study_uid, series_uid, MRImageStorage, rows, cols)
        ds.SOPInstanceUID = generate_uid()
        ds.ImageOrientationPatient = _iop(direction)
        ds.ImagePositionPatient = [float(v) for v in ipp]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]
        ds.SliceThickness = float(spacing[2])
        ds.InstanceNumber = k + 1
        if frame_header is not None:
            for keyword, value in frame_header[k].items():
                setattr(ds, keyword, value)
        ds.PixelData = np.ascontiguousarray(array[k].astype(np.uint16)).tobytes()
        _file_meta(ds)
        datasets.append(ds)
    if shuffle_seed is not None:
        order = list(range(n))
        random.Random(shuffle_seed).shuffle(order)
        for number, ds in zip(order, datasets, strict=True):
            ds.InstanceNumber = number + 1
        random.Random(shuffle_seed + 1).shuffle(datasets)
    return datasets


def make_enhanced_mr(
    array: NDArray[Any],
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    direction: NDArray[np.float64] | None = None,
    header: Mapping[str, Any] | None = None,
    *,
    echo_time: float = 100.0,
    repetition_time: float = 5000.0,
    inversion_time: float | None = None,
    flip_angle: float = 90.0,
    b_values: Sequence[float] | None = None,
    frame_order_seed: int | None = None,
) -> Dataset:
    """One Enhanced MR Image instance (multi-frame) of ``array`` (k, j, i).

    MR timing, pixel measures and orientation go to the shared functional
    groups; plane position, frame content and (optionally) the MR Diffusion
    group with a b-value per frame go to the per-frame groups. With
    ``frame_order_seed`` the frames are stored in a shuffled order.
    """
    direction = PLANES["axial"] if direction is None else np.asarray(direction, float)
    n, rows, cols = array.shape
    study_uid = generate_uid()
    ds = _base(header or {}, study_uid, generate_uid(), ENHANCED_MR_IMAGE_STORAGE, rows, cols)
    ds.SOPInstanceUID = generate_uid()
    ds.InstanceNumber = 1
    ds.NumberOfFrames = n
    ds.setdefault("ImageType", ["ORIGINAL", "PRIMARY", "M", "NONE"])
    ds.setdefault("MRAcquisitionType", "2D")

    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [float(spacing[1]), float(spacing[0])]
    measures.SliceThickness = float(spacing[2])
    shared.PixelMeasuresSequence = DicomSequence([measures])
    orient = Dataset()
    orient.ImageOrientationPatient = _iop(direction)
    shared.PlaneOrientationSequence = DicomSequence([orient])
    timing = Dataset()
    timing.RepetitionTime = repetition_time
    timing.FlipAngle = flip_angle
    shared.MRTimingAndRelatedParametersSequence = DicomSequence([timing])
    echo = Dataset()
    echo.EffectiveEchoTime = echo_time
    shared.MREchoSequence = DicomSequence([echo])
    modifier = Dataset()
    modifier.InversionRecovery = "YES" if inversion_time is not None else "NO"
    if inversion_time is not None:
        modifier.InversionTimes = [inversion_time]
    shared.MRModifierSequence = DicomSequence([modifier])
    frame_type = Dataset()
    frame_type.FrameType = list(ds.ImageType)
    shared.MRImageFrameTypeSequence = DicomSequence([frame_type])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])

    order = list(range(n))
    if frame_order_seed is not None:
        random.Random(frame_order_seed).shuffle(order)
    positions = _positions(n, spacing, origin, direction)
    per_frame = []
    for stored, k in enumerate(order):
        item = Dataset()
        position = Dataset()
        position.ImagePositionPatient = [float(v) for v in positions[k]]
        item.PlanePositionSequence = DicomSequence([position])
        content = Dataset()
        content.InStackPositionNumber = k + 1
        content.StackID = "1"
        content.TemporalPositionIndex = 1
        content.FrameAcquisitionNumber = stored + 1
        item.FrameContentSequence = DicomSequence([content])
        if b_values is not None:
            diffusion = Dataset()
            diffusion.DiffusionBValue = float(b_values[k])
            diffusion.DiffusionDirectionality = "ISOTROPIC" if b_values[k] > 0 else "NONE"
            item.MRDiffusionSequence = DicomSequence([diffusion])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.PixelData = np.ascontiguousarray(array[order].astype(np.uint16)).tobytes()
    _file_meta(ds)
    return ds


def write_series(
    datasets: Sequence[Dataset], folder: Path, transfer_syntax: str | None = None
) -> list[Path]:
    """Write datasets to ``folder`` (one file each), compressing to ``transfer_syntax`` if given.

    Compression uses pydicom's encoders (RLE natively; JPEG 2000 / JPEG-LS
    through pylibjpeg-openjpeg / pyjpegls).
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, ds in enumerate(datasets):
        out = ds
        if transfer_syntax is not None:
            out = copy.deepcopy(ds)
            out.compress(transfer_syntax)
        path = folder / f"IM{index:05d}.dcm"
        out.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
