"""Acquisition geometry of a series and resampling of the subject into its slices.

A series is a stack of parallel slices (DICOM Image Plane module, C.7.6.2):

* ``row_dir`` = first three values of ImageOrientationPatient (direction of
  increasing column index), ``col_dir`` = last three (increasing row index),
  ``normal`` = row_dir x col_dir, along which the slices are ordered;
* ``origin`` = ImagePositionPatient of the first slice (centre of its first pixel);
* pixel spacing (row spacing, column spacing) and slice spacing in mm.

In SimpleITK's terms the direction matrix has columns (row_dir, col_dir, normal),
the spacing is (column spacing, row spacing, slice spacing) and the origin is the
first slice's ImagePositionPatient. Pixel arrays are indexed [slice, row, column].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import SimpleITK as sitk
from numpy.typing import NDArray

from dicom_node.errors import DicomNodeError

Plane = Literal["AX", "SAG", "COR"]
FloatArray = NDArray[np.float32]

#: Canonical (row_dir, col_dir) in patient LPS for each plane, as scanners write them.
CANONICAL_AXES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "AX": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "SAG": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
    "COR": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
}
#: Brain centre in template-LPS mm, where the technologist centres the slices.
BRAIN_CENTRE_TPL = np.array([0.0, 12.0, 14.0])


class GeometryError(DicomNodeError):
    """A requested acquisition geometry is impossible (e.g. no slices)."""


@dataclass(frozen=True)
class SliceGeometry:
    """Geometry of a stack of parallel slices in patient LPS coordinates.

    Attributes:
        rows, cols, n_slices: matrix and number of slices.
        row_dir, col_dir: ImageOrientationPatient (unit vectors).
        origin: ImagePositionPatient of slice 0.
        row_spacing, col_spacing: PixelSpacing values (mm).
        slice_spacing: centre-to-centre distance (SpacingBetweenSlices), mm.
        thickness: SliceThickness (mm); thickness < slice_spacing means a gap.
        plane: "AX", "SAG" or "COR" (nominal).
    """

    rows: int
    cols: int
    n_slices: int
    row_dir: NDArray[np.float64]
    col_dir: NDArray[np.float64]
    origin: NDArray[np.float64]
    row_spacing: float
    col_spacing: float
    slice_spacing: float
    thickness: float
    plane: str

    @property
    def normal(self) -> NDArray[np.float64]:
        """Unit normal (row_dir x col_dir); slice k sits at origin + k * spacing * normal."""
        return np.cross(self.row_dir, self.col_dir)

    def direction(self) -> NDArray[np.float64]:
        """3x3 direction matrix, columns (row_dir, col_dir, normal) (SimpleITK convention)."""
        return np.stack([self.row_dir, self.col_dir, self.normal], axis=1)

    def spacing(self) -> tuple[float, float, float]:
        """(column spacing, row spacing, slice spacing) (SimpleITK convention)."""
        return (self.col_spacing, self.row_spacing, self.slice_spacing)

    def slice_position(self, k: int) -> NDArray[np.float64]:
        """ImagePositionPatient of slice ``k``."""
        return self.origin + k * self.slice_spacing * self.normal

    def index_to_world(self) -> NDArray[np.float64]:
        """4x4 matrix from index (column i, row j, slice k) to patient LPS mm."""
        m = np.eye(4)
        m[:3, 0] = self.row_dir * self.col_spacing
        m[:3, 1] = self.col_dir * self.row_spacing
        m[:3, 2] = self.normal * self.slice_spacing
        m[:3, 3] = self.origin
        return m

    def iop(self) -> list[float]:
        """ImageOrientationPatient values."""
        return [*map(float, self.row_dir), *map(float, self.col_dir)]


def _rotation(axis: NDArray[np.float64], degrees: float) -> NDArray[np.float64]:
    a = axis / np.linalg.norm(axis)
    t = np.deg2rad(degrees)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    rot: NDArray[np.float64] = np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)
    return rot


def plan_slices(
    rng: np.random.Generator,
    pose: NDArray[np.float64],
    *,
    plane: Plane,
    fov_mm: tuple[float, float],
    matrix: tuple[int, int],
    n_slices: int,
    thickness: float,
    gap: float,
    oblique: bool = True,
) -> SliceGeometry:
    """Place a slice stack on the subject as a technologist would.

    Args:
        rng: random generator of the study.
        pose: subject pose (template-LPS -> patient LPS); the stack follows the head.
        plane: nominal orientation.
        fov_mm: field of view (rows direction, columns direction) in mm.
        matrix: reconstructed matrix (rows, columns).
        n_slices: number of slices.
        thickness: slice thickness (mm).
        gap: gap between slices (mm); slice spacing = thickness + gap.
        oblique: follow the head's rotation and add an AC-PC-like tilt on axials;
            when False the stack is exactly canonical (scanner axes).
    """
    if n_slices < 1 or matrix[0] < 1 or matrix[1] < 1:
        raise GeometryError(f"matrix {matrix} x {n_slices} slices is empty")
    row0, col0 = (np.asarray(v, dtype=np.float64) for v in CANONICAL_AXES[plane])
    rot = np.eye(3)
    if oblique:
        head = pose[:3, :3] / np.cbrt(np.linalg.det(pose[:3, :3]))
        rot = head
        if plane == "AX":
            rot = rot @ _rotation(np.array([1.0, 0.0, 0.0]), float(rng.uniform(-14, 4)))
        rot = rot @ _rotation(rng.normal(size=3), float(rng.normal(0, 2.0)))
    row_dir = rot @ row0
    col_dir = rot @ col0
    # re-orthonormalise (IOP values are written with limited precision)
    row_dir /= np.linalg.norm(row_dir)
    col_dir -= row_dir * float(row_dir @ col_dir)
    col_dir /= np.linalg.norm(col_dir)
    normal = np.cross(row_dir, col_dir)
    rows, cols = matrix
    row_spacing = fov_mm[0] / rows
    col_spacing = fov_mm[1] / cols
    slice_spacing = thickness + gap
    centre = (pose @ np.append(BRAIN_CENTRE_TPL, 1.0))[:3] + rng.normal(0, 3.0, size=3)
    origin = (
        centre
        - row_dir * col_spacing * (cols - 1) / 2
        - col_dir * row_spacing * (rows - 1) / 2
        - normal * slice_spacing * (n_slices - 1) / 2
    )
    return SliceGeometry(
        rows=rows,
        cols=cols,
        n_slices=n_slices,
        row_dir=row_dir,
        col_dir=col_dir,
        origin=np.round(origin, 4),
        row_spacing=float(np.round(row_spacing, 6)),
        col_spacing=float(np.round(col_spacing, 6)),
        slice_spacing=float(slice_spacing),
        thickness=float(thickness),
        plane=plane,
    )


def grid_image(volume: FloatArray, grid_to_world: NDArray[np.float64]) -> sitk.Image:
    """Wrap a subject-grid volume (indexed [x, y, z]) as a SimpleITK image in patient space.

    ``grid_to_world`` must be a similarity (rotation x isotropic scale + translation).
    """
    lin = grid_to_world[:3, :3]
    spacing = np.linalg.norm(lin, axis=0)
    direction = lin / spacing
    img = sitk.GetImageFromArray(np.ascontiguousarray(volume.transpose(2, 1, 0)))
    img.SetSpacing([float(v) for v in spacing])
    img.SetOrigin([float(v) for v in grid_to_world[:3, 3]])
    img.SetDirection([float(v) for v in direction.flatten()])
    return img


def resample_to_slices(
    volume: FloatArray | sitk.Image,
    grid_to_world: NDArray[np.float64],
    geom: SliceGeometry,
    *,
    sub_slices: int = 1,
) -> FloatArray:
    """Sample a subject-grid volume on a slice stack (trilinear, SimpleITK Resample).

    Args:
        volume: array indexed [x, y, z] on the subject grid, or the image made by
            :func:`grid_image` from it (reuse it when sampling several stacks).
        grid_to_world: 4x4 from subject grid index to patient LPS mm.
        geom: the slice stack.
        sub_slices: samples averaged across the slice thickness (partial volume of
            thick 2D slices); 1 samples the slice centre only.

    Returns:
        float32 array [slice, row, column].
    """
    img = volume if isinstance(volume, sitk.Image) else grid_image(volume, grid_to_world)
    ref = sitk.Image([geom.cols, geom.rows, geom.n_slices], sitk.sitkFloat32)
    ref.SetSpacing([geom.col_spacing, geom.row_spacing, geom.slice_spacing])
    ref.SetDirection([float(v) for v in geom.direction().flatten()])
    offsets = [0.0]
    if sub_slices > 1:
        half = geom.thickness / 2
        offsets = [float(d) for d in np.linspace(-half, half, sub_slices + 2)[1:-1]]
    acc = np.zeros((geom.n_slices, geom.rows, geom.cols), np.float32)
    for d in offsets:
        ref.SetOrigin([float(v) for v in geom.origin + d * geom.normal])
        out = sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
        acc += sitk.GetArrayViewFromImage(out)
    if len(offsets) > 1:
        acc /= len(offsets)
    return acc


def resample_mask(
    mask: NDArray[np.bool_], affine_lps: NDArray[np.float64], geom: SliceGeometry
) -> NDArray[np.float32]:
    """Fraction (0..1) of a truth mask (indexed [i, j, k] with ``affine_lps``) in each
    voxel of a slice stack, as a float32 array [slice, row, column]."""
    return resample_to_slices(mask.astype(np.float32), affine_lps, geom)


def world_to_grid_points(
    points: NDArray[np.float64], grid_to_world: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Patient LPS points (N x 3) to (fractional) subject grid indices (N x 3)."""
    inv = np.linalg.inv(grid_to_world)
    return (inv[:3, :3] @ points.T).T + inv[:3, 3]
