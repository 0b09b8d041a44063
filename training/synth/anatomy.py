"""Subject anatomy from the MNI152 2009 template shipped inside the nilearn wheel.

The ICBM 2009a symmetric template (T1, grey- and white-matter probability maps) is
read with nibabel from ``nilearn/datasets/data`` (no download). The T1 template is
brain-extracted, so its non-zero voxels give the brain mask; CSF is the brain mask
minus grey minus white matter. Everything outside the brain (extra-axial CSF, skull
tables, diploic marrow, scalp muscle, fat and skin, a neck, the globes) is built
from the signed distance to the brain, so that it follows every subject's warp.

Coordinates: the template is re-indexed so that its array axes run along the
DICOM patient axes (x towards the patient's Left, y Posterior, z Superior: LPS),
1 mm voxels. A *subject* is the template pulled through a smooth backward warp
(elastic deformation, age-like ventricular enlargement, optional mass effect)
onto a regular grid in the same "template LPS" millimetres, plus a rigid pose and
head-size scaling (:attr:`SubjectAnatomy.pose`) to the scanner's patient (LPS)
coordinates.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from numpy.typing import NDArray
from scipy import ndimage as ndi

from dicom_node.errors import ConfigError

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float32]

_TEMPLATE_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
#: Padding (voxels) added below the template so that a neck exists for sagittal views.
_PAD_INFERIOR = 44
#: Centres (template LPS mm) of the globes: MNI (+-32, 52, -38) in RAS.
EYE_CENTRES_LPS = ((-32.0, -52.0, -38.0), (32.0, -52.0, -38.0))
EYE_RADIUS_MM = 11.5
#: Centre of the lateral ventricles in template LPS mm (MNI (0, -8, 14) RAS).
VENTRICLE_CENTRE_LPS = np.array([0.0, 8.0, 14.0])


def template_dir() -> Path:
    """Folder of nilearn's packaged MNI152 2009 files (inside the installed wheel)."""
    try:
        import nilearn
    except ImportError as exc:  # pragma: no cover - nilearn is a declared dependency
        raise ConfigError("nilearn is not installed: the synth extra is needed") from exc
    return Path(nilearn.__file__).parent / "datasets" / "data"


@dataclass(frozen=True)
class Template:
    """The MNI152 2009a template on a 1 mm LPS-indexed grid (arrays indexed [x, y, z]).

    Attributes:
        gm: grey-matter fraction in [0, 1].
        wm: white-matter fraction in [0, 1].
        dist: signed distance (mm) to the head core (brain + neck), negative inside.
        neck: fraction of the core that is neck soft tissue (not brain).
        origin: template-LPS position (mm) of voxel [0, 0, 0].
    """

    gm: FloatArray
    wm: FloatArray
    dist: FloatArray
    neck: FloatArray
    origin: NDArray[np.float64]

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape (x, y, z)."""
        return (int(self.gm.shape[0]), int(self.gm.shape[1]), int(self.gm.shape[2]))


def _load_lps(name: str) -> FloatArray:
    import nibabel as nib

    path = template_dir() / _TEMPLATE_FILES[name]
    if not path.exists():
        raise ConfigError(f"MNI152 template file {path} not found in the nilearn wheel")
    img = nib.load(str(path))
    data = np.asarray(img.dataobj, dtype=np.float32) / 255.0  # type: ignore[attr-defined]
    # RAS index order -> LPS index order (x and y flipped).
    return np.ascontiguousarray(data[::-1, ::-1, :])


@functools.lru_cache(maxsize=1)
def load_template() -> Template:
    """Load (once per process) the template, its tissue maps and the head distance map."""
    t1 = _load_lps("t1")
    gm = _load_lps("gm")
    wm = _load_lps("wm")
    brain = t1 > 0
    pad = ((0, 0), (0, 0), (_PAD_INFERIOR, 0))
    gm = np.pad(gm, pad)
    wm = np.pad(wm, pad)
    brain = np.pad(brain, pad)
    # Continue the cord (lowest slice) down through the padding.
    brain[:, :, :_PAD_INFERIOR] = brain[:, :, _PAD_INFERIOR : _PAD_INFERIOR + 1]
    gm[:, :, :_PAD_INFERIOR] = gm[:, :, _PAD_INFERIOR : _PAD_INFERIOR + 1]
    wm[:, :, :_PAD_INFERIOR] = wm[:, :, _PAD_INFERIOR : _PAD_INFERIOR + 1]
    nx, ny, nz = brain.shape
    # Template RAS origin (-98, -134, -72) -> LPS origin of the flipped grid.
    origin = np.array([-98.0, -98.0, -72.0 - _PAD_INFERIOR])
    x = origin[0] + np.arange(nx)
    y = origin[1] + np.arange(ny)
    z = origin[2] + np.arange(nz)
    # Neck: an elliptic cylinder below the cerebellum, widening into the skull base,
    # and a face block (soft tissue under the frontal lobes, around the globes).
    zz = z[None, None, :]
    widen = np.clip((-28.0 - zz) / 30.0, 0.0, 1.0) ** 0.5
    ex = (x[:, None, None] / 50.0) ** 2
    ey = ((y[None, :, None] - 8.0) / 48.0) ** 2
    neck_core = (ex + ey) < widen  # strict: no line of voxels where widen is 0
    # face: an elliptic section in front of the neck, narrowing towards the jaw
    shrink = 1.0 - 0.45 * np.clip((-45.0 - zz) / 50.0, 0.0, 1.0)
    fx = (x[:, None, None] / (56.0 * shrink)) ** 2
    fy = ((y[None, :, None] + 30.0) / (46.0 * shrink)) ** 2
    face = ((fx + fy) < 1.0) & (zz < -20.0) & (zz > -100.0)
    core = brain | neck_core | face
    core = ndi.binary_closing(core, iterations=5) | brain
    # round the corners of the face and neck blocks
    core = (ndi.gaussian_filter(core.astype(np.float32), 3.0) > 0.5) | brain
    core = ndi.binary_fill_holes(core)
    # signed distance (mm), negative inside (SimpleITK's Maurer transform: fast)
    core_img = sitk.GetImageFromArray(core.astype(np.uint8))
    signed = sitk.SignedMaurerDistanceMap(
        core_img, insideIsPositive=False, squaredDistance=False, useImageSpacing=True
    )
    dist = sitk.GetArrayFromImage(signed).astype(np.float32)
    dist = ndi.gaussian_filter(dist, 1.0).astype(np.float32)
    neck = (core & ~brain).astype(np.float32)
    neck = ndi.gaussian_filter(neck, 0.7).astype(np.float32)
    logger.debug("template loaded: shape %s", brain.shape)
    return Template(gm=gm, wm=wm, dist=dist, neck=neck, origin=origin)


@dataclass
class SubjectAnatomy:
    """One subject on its own grid (template-LPS mm) plus its pose in the scanner.

    Attributes:
        gm, wm, csf, neck: tissue fractions on the subject grid (arrays [x, y, z]).
        dist: signed distance to the head core (mm); shells are drawn from it.
        grid_origin: template-LPS position (mm) of grid voxel [0, 0, 0].
        grid_spacing: grid voxel size (mm), isotropic.
        pose: 4x4 matrix from template-LPS mm to scanner patient LPS mm
            (rotation x head scale, then translation).
        shells: outer radii (mm from the core surface) of the extra-axial layers,
            in the order of :data:`SHELL_TISSUES`.
        ventricle_expansion: magnification of the ventricular region (0 = template).
        atrophy: 0..1 cortical thinning / sulcal widening.
        age: years (drives atrophy and ventricle size).
    """

    gm: FloatArray
    wm: FloatArray
    csf: FloatArray
    neck: FloatArray
    dist: FloatArray
    grid_origin: NDArray[np.float64]
    grid_spacing: float
    pose: NDArray[np.float64]
    shells: tuple[float, ...]
    ventricle_expansion: float
    atrophy: float
    age: int
    mass_centres: list[tuple[NDArray[np.float64], float, float]] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Grid shape (x, y, z)."""
        return (int(self.gm.shape[0]), int(self.gm.shape[1]), int(self.gm.shape[2]))

    def grid_affine(self) -> NDArray[np.float64]:
        """4x4 matrix from grid index (x, y, z) to template-LPS mm."""
        aff = np.eye(4)
        aff[:3, :3] *= self.grid_spacing
        aff[:3, 3] = self.grid_origin
        return aff

    def grid_to_world(self) -> NDArray[np.float64]:
        """4x4 matrix from grid index to scanner patient LPS mm."""
        return self.pose @ self.grid_affine()

    def axes_mm(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Template-LPS coordinates (mm) of the grid along x, y and z."""
        nx, ny, nz = self.shape
        s = self.grid_spacing
        o = self.grid_origin
        return (o[0] + s * np.arange(nx), o[1] + s * np.arange(ny), o[2] + s * np.arange(nz))

    def ventricles(self) -> FloatArray:
        """CSF fraction of the ventricular system.

        The connected bodies of deep CSF that reach the central region where the
        lateral and third ventricles lie (however enlarged), with their partial volume.
        """
        x, y, z = self.axes_mm()
        fluid = (self.csf > 0.55) & (self.dist < -5.0)
        # cut the midline fissure (above the callosum, in front of and behind the third
        # ventricle) so that it does not join the ventricles' component
        fissure = (np.abs(x)[:, None, None] < 3.5) & (
            (z[None, None, :] > 20) | (y[None, :, None] < -12) | (y[None, :, None] > 35)
        )
        fluid &= ~fissure
        labels, n = ndi.label(fluid)
        central = (
            (np.abs(x)[:, None, None] < 22)
            & (np.abs(x)[:, None, None] > 3)
            & (np.abs(y[None, :, None] - 6.0) < 28)
            & (z[None, None, :] > 2)
            & (z[None, None, :] < 30)
        )
        counts = np.bincount(labels[central & fluid], minlength=n + 1)
        keep = np.flatnonzero(counts > 30 / self.grid_spacing**3)
        keep = keep[keep > 0]
        system = np.isin(labels, keep)
        system = ndi.binary_dilation(system) & (self.csf > 0.2)
        return np.where(system, self.csf, 0.0).astype(np.float32)


#: Extra-axial layers from the core surface outwards.
SHELL_TISSUES = ("csf", "bone", "marrow", "bone", "muscle", "fat", "skin")


def _elastic_terms(
    rng: np.random.Generator, n_terms: int, amplitude: float
) -> list[tuple[int, float, NDArray[np.float64], NDArray[np.float64]]]:
    terms = []
    for _ in range(n_terms):
        comp = int(rng.integers(0, 3))
        amp = float(rng.normal(0.0, amplitude))
        freq = 2 * np.pi / rng.uniform(70.0, 180.0, size=3)
        phase = rng.uniform(0, 2 * np.pi, size=3)
        terms.append((comp, amp, freq, phase))
    return terms


def random_pose(rng: np.random.Generator, head_scale: float) -> NDArray[np.float64]:
    """Rigid head pose in the coil (small rotations, offsets) times head size.

    Returns:
        4x4 matrix from template-LPS mm to scanner patient LPS mm.
    """
    ax, ay, az = np.deg2rad(rng.normal(0.0, [6.0, 3.0, 4.0]))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    pose = np.eye(4)
    pose[:3, :3] = rz @ ry @ rx * head_scale
    pose[:3, 3] = rng.normal(0.0, [4.0, 8.0, 12.0]) + np.array([0.0, 10.0, -15.0])
    return pose


def make_subject(
    rng: np.random.Generator,
    *,
    grid_mm: float = 1.25,
    age: int | None = None,
    ventricle_expansion: float | None = None,
    masses: list[tuple[NDArray[np.float64], float, float]] | None = None,
) -> SubjectAnatomy:
    """Draw one subject: warp the template, vary ventricles, sulci, skull and pose.

    Args:
        rng: the study's random generator (all randomness comes from it).
        grid_mm: voxel size of the subject grid (1.25 mm for full studies).
        age: years; drawn when omitted. Older subjects get wider sulci and ventricles.
        ventricle_expansion: forced magnification of the ventricular region
            (hydrocephalus uses 0.35-0.6); age-like when omitted.
        masses: (centre template-LPS mm, radius mm, strength 0..0.6) of space-occupying
            lesions whose mass effect displaces the surrounding brain.
    """
    tpl = load_template()
    if age is None:
        age = int(np.clip(rng.normal(52, 18), 18, 92))
    age_factor = float(np.clip((age - 30) / 60.0, 0.0, 1.0))
    if ventricle_expansion is None:
        ventricle_expansion = float(np.clip(rng.normal(0.12 * age_factor, 0.05), -0.05, 0.25))
    atrophy = float(np.clip(rng.normal(0.45 * age_factor, 0.12), 0.0, 0.7))
    head_scale = float(np.clip(rng.normal(1.0, 0.04), 0.9, 1.1))

    tpl_shape = np.array(tpl.shape)
    extent = (tpl_shape - 1) * 1.0
    grid_shape = tuple(int(v) for v in np.floor(extent / grid_mm) + 1)
    origin = tpl.origin.copy()
    xs = [origin[i] + grid_mm * np.arange(grid_shape[i]) for i in range(3)]
    px = xs[0][:, None, None]
    py = xs[1][None, :, None]
    pz = xs[2][None, None, :]
    bx, by, bz = np.broadcast_arrays(px, py, pz)

    coords = np.empty((3, *grid_shape), dtype=np.float32)
    coords[0] = bx - tpl.origin[0]
    coords[1] = by - tpl.origin[1]
    coords[2] = bz - tpl.origin[2]
    # Smooth elastic deformation: separable sinusoid products (a few mm).
    for comp, amp, freq, phase in _elastic_terms(rng, 9, 1.6):
        fx = np.sin(freq[0] * xs[0] + phase[0])[:, None, None]
        fy = np.sin(freq[1] * xs[1] + phase[1])[None, :, None]
        fz = np.sin(freq[2] * xs[2] + phase[2])[None, None, :]
        coords[comp] += (amp * fx * fy * fz).astype(np.float32)
    # Ventricular magnification (backward map pulls samples towards the centre).
    centres: list[tuple[NDArray[np.float64], float, NDArray[np.float64]]] = [
        (VENTRICLE_CENTRE_LPS, ventricle_expansion, np.array([26.0, 40.0, 24.0]))
    ]
    for centre, radius, strength in masses or []:
        centres.append((np.asarray(centre, dtype=np.float64), strength, np.full(3, radius * 1.3)))
    for centre, strength, sigma in centres:
        if abs(strength) < 1e-3:
            continue
        wx = np.exp(-0.5 * ((xs[0] - centre[0]) / sigma[0]) ** 2)[:, None, None]
        wy = np.exp(-0.5 * ((xs[1] - centre[1]) / sigma[1]) ** 2)[None, :, None]
        wz = np.exp(-0.5 * ((xs[2] - centre[2]) / sigma[2]) ** 2)[None, None, :]
        w = (strength * wx * wy * wz).astype(np.float32)
        coords[0] -= w * (px - centre[0]).astype(np.float32)
        coords[1] -= w * (py - centre[1]).astype(np.float32)
        coords[2] -= w * (pz - centre[2]).astype(np.float32)

    def warp(a: FloatArray, cval: float) -> FloatArray:
        out = ndi.map_coordinates(a, coords, order=1, mode="constant", cval=cval, prefilter=False)
        return np.asarray(out, dtype=np.float32)

    gm = warp(tpl.gm, 0.0)
    wm = warp(tpl.wm, 0.0)
    dist = warp(tpl.dist, 60.0)
    neck = warp(tpl.neck, 0.0)
    core = np.clip(0.5 - dist, 0.0, 1.0)
    csf = np.clip(core - gm - wm - neck, 0.0, 1.0)
    if atrophy > 0.01:
        near_csf = ndi.gaussian_filter(csf, 1.2 / grid_mm)
        loss = np.clip(atrophy * 2.0 * near_csf, 0.0, 0.9) * gm
        gm -= loss
        csf += loss
    shells = (
        float(rng.uniform(1.5, 3.0)),
        float(rng.uniform(1.2, 2.0)),
        float(rng.uniform(2.0, 4.5)),
        float(rng.uniform(1.0, 1.8)),
        float(rng.uniform(1.0, 3.0)),
        float(rng.uniform(2.5, 6.0)),
        float(rng.uniform(1.0, 1.8)),
    )
    return SubjectAnatomy(
        gm=gm,
        wm=wm,
        csf=csf,
        neck=neck,
        dist=dist,
        grid_origin=origin,
        grid_spacing=grid_mm,
        pose=random_pose(rng, head_scale),
        shells=tuple(np.cumsum(shells).tolist()),
        ventricle_expansion=ventricle_expansion,
        atrophy=atrophy,
        age=age,
        mass_centres=list(masses or []),
    )
