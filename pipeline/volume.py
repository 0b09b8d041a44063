"""Turn the images of one series into a 3D volume with correct geometry (LPS).

The loader follows the DICOM *Image Plane* module (C.7.6.2): each image has an
ImageOrientationPatient (row and column direction cosines) and an
ImagePositionPatient (the centre of its first voxel). The slices are sorted by
their position along the slice normal (row x column) — never by
InstanceNumber, which scanners and PACS may shuffle — and the gaps between
them are checked: a gap that is a multiple of the usual spacing is a missing
slice, any other irregularity is non-uniform spacing; both raise
:class:`~dicom_node.errors.VolumeGeometryError` naming the positions at fault.
Enhanced MR multi-frame instances (C.8.13) are read frame by frame from their
functional groups. Compressed transfer syntaxes (JPEG, JPEG-LS, JPEG 2000, RLE)
are decoded by pydicom through pylibjpeg / GDCM.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from dicom_node.errors import SeriesError, VolumeGeometryError
from pipeline.series.headers import Frame, frame_attribute, frames_of

logger = logging.getLogger(__name__)

#: Relative tolerance on the slice gaps before spacing counts as non-uniform.
SPACING_TOLERANCE = 0.05
#: Tolerance on direction cosines (unit vectors) for "same orientation".
ORIENTATION_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Volume:
    """A 3D scalar volume in the DICOM patient coordinate system (LPS).

    Attributes:
        array: voxel values, float32, indexed ``[k, j, i]`` = (slice, row, column).
        spacing: voxel size in mm along (i, j, k) = (column, row, slice), ITK order.
        origin: LPS position (mm) of the centre of voxel ``[0, 0, 0]``.
        direction: 3x3 matrix whose columns are the unit LPS directions of the
            i (along a row), j (down a column) and k (slice) axes.
        series_uid: Series Instance UID of the source series.
        study_uid: Study Instance UID of the source series.
    """

    array: NDArray[np.float32]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: NDArray[np.float64]
    series_uid: str = ""
    study_uid: str = ""

    @property
    def shape(self) -> tuple[int, int, int]:
        """(slices, rows, columns)."""
        k, j, i = self.array.shape
        return (int(k), int(j), int(i))

    @property
    def affine(self) -> NDArray[np.float64]:
        """4x4 matrix mapping voxel (i, j, k, 1) to LPS (x, y, z, 1) in mm."""
        affine = np.eye(4)
        affine[:3, :3] = self.direction * np.asarray(self.spacing)[None, :]
        affine[:3, 3] = self.origin
        return affine

    def world(self, ijk: NDArray[np.float64]) -> NDArray[np.float64]:
        """LPS positions (N, 3) of voxel indices (N, 3) given as (i, j, k)."""
        ijk = np.atleast_2d(np.asarray(ijk, dtype=float))
        world: NDArray[np.float64] = (ijk * np.asarray(self.spacing)) @ self.direction.T
        shifted: NDArray[np.float64] = world + np.asarray(self.origin)
        return shifted

    @property
    def orientation(self) -> str:
        """Three-letter code of the axes (i, j, k), e.g. ``LPS`` for axial slices
        (the letter names the direction each index increases towards)."""
        letters = []
        for axis in self.direction.T:
            dominant = int(np.argmax(np.abs(axis)))
            positive = "LPS"[dominant]
            negative = "RAI"[dominant]
            letters.append(positive if axis[dominant] > 0 else negative)
        return "".join(letters)

    def to_sitk(self) -> Any:
        """The volume as a ``SimpleITK.Image`` (same LPS geometry)."""
        import SimpleITK as sitk

        image = sitk.GetImageFromArray(self.array)
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(tuple(float(v) for v in self.direction.flatten()))
        return image

    @classmethod
    def from_sitk(cls, image: Any, series_uid: str = "", study_uid: str = "") -> Volume:
        """A :class:`Volume` from a ``SimpleITK.Image``."""
        import SimpleITK as sitk

        array = sitk.GetArrayFromImage(image).astype(np.float32)
        return cls(
            array=array,
            spacing=tuple(float(v) for v in image.GetSpacing()),  # type: ignore[arg-type]
            origin=tuple(float(v) for v in image.GetOrigin()),  # type: ignore[arg-type]
            direction=np.asarray(image.GetDirection(), dtype=float).reshape(3, 3),
            series_uid=series_uid,
            study_uid=study_uid,
        )


SeriesInput = str | Path | Dataset | Frame


def _read(item: str | Path) -> Dataset:
    try:
        return pydicom.dcmread(str(item))
    except (OSError, pydicom.errors.InvalidDicomError) as exc:
        raise SeriesError(f"cannot read DICOM file {item!s}: {exc}") from exc


def expand_sources(items: Iterable[SeriesInput] | str | Path) -> list[Frame]:
    """The 2D frames of paths, a folder, datasets or frames (files are read in full)."""
    if isinstance(items, str | Path):
        path = Path(items)
        items = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    frames: list[Frame] = []
    for item in items:
        if isinstance(item, Frame):
            frames.append(item)
        elif isinstance(item, Dataset):
            frames.extend(frames_of(item))
        else:
            frames.extend(frames_of(_read(item)))
    return frames


def _vector(value: Any, size: int, keyword: str, where: str) -> NDArray[np.float64]:
    if value is None or len(value) != size:
        raise VolumeGeometryError(f"{keyword} is missing or malformed ({value!r}) in {where}")
    return np.asarray([float(v) for v in value], dtype=float)


class _PixelCache:
    """Decode each instance once (multi-frame pixel data is shared by its frames)."""

    def __init__(self) -> None:
        self._arrays: dict[int, NDArray[Any]] = {}

    def frame(self, frame: Frame) -> NDArray[np.float32]:
        key = id(frame.dataset)
        array = self._arrays.get(key)
        if array is None:
            try:
                array = frame.dataset.pixel_array
            except Exception as exc:
                syntax = frame.dataset.file_meta.get("TransferSyntaxUID", "?")
                raise SeriesError(
                    f"cannot decode PixelData of SOPInstanceUID "
                    f"{frame.dataset.get('SOPInstanceUID', '?')} "
                    f"(TransferSyntaxUID {syntax}): {exc}"
                ) from exc
            self._arrays[key] = array
        data = array[frame.index] if frame.index is not None and array.ndim == 3 else array
        if data.ndim != 2:
            raise SeriesError(
                f"PixelData has shape {data.shape}; only single-channel images are supported"
            )
        slope = frame.attribute("RescaleSlope")
        intercept = frame.attribute("RescaleIntercept")
        out = data.astype(np.float32)
        if slope is not None and float(slope) != 1.0:
            out = out * np.float32(float(slope))
        if intercept is not None and float(intercept) != 0.0:
            out = out + np.float32(float(intercept))
        return out


def _where(frame: Frame) -> str:
    sop = frame.dataset.get("SOPInstanceUID", "?")
    return f"SOPInstanceUID {sop}" + (
        f" frame {frame.index + 1}" if frame.index is not None else ""
    )


def sort_frames(frames: Sequence[Frame]) -> tuple[list[Frame], NDArray[np.float64], NDArray[Any]]:
    """Sort frames along the slice normal.

    Returns:
        The sorted frames, the 3x3 direction matrix (columns: row, column, normal
        directions) and the sorted positions along the normal (mm).

    Raises:
        VolumeGeometryError: mixed orientations, missing geometry, duplicate
            positions or positions off the normal line.
    """
    if not frames:
        raise SeriesError("no images to load")
    where = _where(frames[0])
    iop0 = _vector(
        frames[0].attribute("ImageOrientationPatient"), 6, "ImageOrientationPatient", where
    )
    row, col = iop0[:3], iop0[3:]
    normal = np.cross(row, col)
    if np.linalg.norm(normal) < 1e-6:
        raise VolumeGeometryError(f"ImageOrientationPatient {list(iop0)} is degenerate in {where}")
    normal /= np.linalg.norm(normal)
    positions = []
    for frame in frames:
        where = _where(frame)
        iop = _vector(
            frame.attribute("ImageOrientationPatient"), 6, "ImageOrientationPatient", where
        )
        if np.max(np.abs(iop - iop0)) > ORIENTATION_TOLERANCE:
            raise VolumeGeometryError(
                f"ImageOrientationPatient {list(iop)} of {where} differs from {list(iop0)}: "
                "the series mixes orientations (a localizer?)"
            )
        positions.append(
            _vector(frame.attribute("ImagePositionPatient"), 3, "ImagePositionPatient", where)
        )
    ipp = np.asarray(positions)
    distance = ipp @ normal
    order = np.argsort(distance, kind="stable")
    sorted_frames = [frames[i] for i in order]
    ipp, distance = ipp[order], distance[order]
    if len(frames) > 1:
        gaps = np.diff(distance)
        duplicate = np.flatnonzero(gaps < 1e-3)
        if duplicate.size:
            d = distance[duplicate[0]]
            raise VolumeGeometryError(
                f"two images share ImagePositionPatient at {d:.3f} mm along the slice normal "
                f"({_where(sorted_frames[duplicate[0]])}, "
                f"{_where(sorted_frames[duplicate[0] + 1])})"
                ": several volumes in one series (split them first, e.g. by b-value)"
            )
        in_plane = ipp - ipp[0] - np.outer(distance - distance[0], normal)
        off = float(np.max(np.linalg.norm(in_plane, axis=1)))
        spacing = frames[0].attribute("PixelSpacing")
        pixel = float(min(float(v) for v in spacing)) if spacing else 1.0
        if off > 0.5 * pixel:
            raise VolumeGeometryError(
                f"ImagePositionPatient values drift {off:.2f} mm off the slice normal "
                "(gantry tilt or mixed stacks): not a regular volume"
            )
    direction = np.stack([row, col, normal], axis=1)
    return sorted_frames, direction, distance


def _slice_spacing(distance: NDArray[Any], frames: Sequence[Frame]) -> float:
    """The regular spacing between slices, or a clear error when there is none."""
    if len(distance) < 2:
        thickness = frames[0].attribute("SliceThickness") or frames[0].attribute(
            "SpacingBetweenSlices"
        )
        return float(thickness) if thickness else 1.0
    gaps = np.diff(distance)
    step = float(np.median(gaps))
    ratio = gaps / step
    bad = np.flatnonzero(np.abs(ratio - 1.0) > SPACING_TOLERANCE)
    if bad.size == 0:
        return float(np.mean(gaps))
    first = int(bad[0])
    multiple = ratio[first]
    if abs(multiple - round(multiple)) <= SPACING_TOLERANCE and round(multiple) >= 2:
        missing = int(sum(round(r) - 1 for r in ratio[bad] if round(r) >= 2))
        raise VolumeGeometryError(
            f"missing slice(s): gap of {gaps[first]:.3f} mm between slice positions "
            f"{distance[first]:.3f} and {distance[first + 1]:.3f} mm along the normal "
            f"where the spacing is {step:.3f} mm ({missing} slice(s) missing in all)"
        )
    raise VolumeGeometryError(
        f"non-uniform slice spacing: gap of {gaps[first]:.3f} mm between positions "
        f"{distance[first]:.3f} and {distance[first + 1]:.3f} mm along the normal, "
        f"median spacing {step:.3f} mm (tolerance {SPACING_TOLERANCE:.0%})"
    )


def load_series(items: Iterable[SeriesInput] | str | Path) -> Volume:
    """Load one series as a :class:`Volume`.

    Args:
        items: file paths, a folder holding one series, in-memory pydicom
            datasets (classic or Enhanced MR multi-frame), or :class:`Frame`
            objects (e.g. one b-value of a diffusion series).

    Raises:
        SeriesError: unreadable files, several series mixed, undecodable pixels.
        VolumeGeometryError: the images do not form a regular volume.
    """
    frames = expand_sources(items)
    if not frames:
        raise SeriesError(f"no DICOM images found in {items!r}")
    series_uids = {str(f.dataset.get("SeriesInstanceUID", "")) for f in frames}
    if len(series_uids) > 1:
        raise SeriesError(
            f"images of several series given: SeriesInstanceUID {sorted(series_uids)}"
        )
    sorted_frames, direction, distance = sort_frames(frames)
    slice_spacing = _slice_spacing(distance, sorted_frames)
    first = sorted_frames[0]
    pixel_spacing = first.attribute("PixelSpacing")
    if pixel_spacing is None:
        raise VolumeGeometryError(f"PixelSpacing is missing in {_where(first)}")
    rows = {int(f.dataset.Rows) for f in sorted_frames}
    cols = {int(f.dataset.Columns) for f in sorted_frames}
    if len(rows) > 1 or len(cols) > 1:
        raise VolumeGeometryError(
            f"images differ in size: Rows {sorted(rows)}, Columns {sorted(cols)}"
        )
    cache = _PixelCache()
    array = np.stack([cache.frame(f) for f in sorted_frames]).astype(np.float32, copy=False)
    origin = _vector(first.attribute("ImagePositionPatient"), 3, "ImagePositionPatient", "")
    volume = Volume(
        array=array,
        spacing=(float(pixel_spacing[1]), float(pixel_spacing[0]), slice_spacing),
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction=direction,
        series_uid=series_uids.pop(),
        study_uid=str(first.dataset.get("StudyInstanceUID", "")),
    )
    logger.debug(
        "study %s: loaded series %s shape %s spacing %s orientation %s",
        volume.study_uid,
        volume.series_uid,
        volume.shape,
        volume.spacing,
        volume.orientation,
    )
    return volume


def frame_position(frame: Frame) -> tuple[float, float, float]:
    """ImagePositionPatient of one frame, rounded to 0.01 mm (for grouping)."""
    value = frame_attribute(frame.dataset, "ImagePositionPatient", frame.index)
    vec = _vector(value, 3, "ImagePositionPatient", _where(frame))
    return (round(float(vec[0]), 2), round(float(vec[1]), 2), round(float(vec[2]), 2))
