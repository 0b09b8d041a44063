"""Noise-free signal of a subject (with its lesions) on the subject grid, per sequence.

Partial volume is exact at this stage: every voxel mixes tissue fractions and the
signal is the fraction-weighted sum of each tissue's signal (see
:mod:`training.synth.contrast`). Extra-axial layers come from the signed distance
to the head core, with each subject's own layer thicknesses.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from training.synth.anatomy import (
    EYE_CENTRES_LPS,
    EYE_RADIUS_MM,
    SHELL_TISSUES,
    SubjectAnatomy,
)
from training.synth.contrast import TISSUES, SequenceParams, tissue_signal
from training.synth.findings import Lesion

FloatArray = NDArray[np.float32]


def _shell_profile(
    subject: SubjectAnatomy, values: dict[str, float]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Knots (mm from the core surface) and signals of the extra-axial layers."""
    xs: list[float] = [-1.0]
    ys: list[float] = [values["csf"]]
    inner = 0.0
    for tissue, outer in zip(SHELL_TISSUES, subject.shells, strict=True):
        a, b = inner, outer
        half = min(0.45, (b - a) / 2 - 0.05)
        xs += [a + half, b - half]
        ys += [values[tissue], values[tissue]]
        inner = outer
    xs += [inner + 0.6]
    ys += [0.0]
    return np.asarray(xs), np.asarray(ys)


def signal_volume(
    subject: SubjectAnatomy,
    lesions: list[Lesion],
    params: SequenceParams,
    field_t: float,
) -> FloatArray:
    """Noise-free signal on the subject grid for one sequence.

    Args:
        subject: the anatomy (fractions, distance map, layer thicknesses).
        lesions: rendered findings; their compartments replace normal tissue.
        params: timing of the sequence (kind, TR, TE, TI, flip, b-value, contrast).
        field_t: main field strength (tesla).
    """
    values = {name: tissue_signal(t, params, field_t) for name, t in TISSUES.items()}
    xk, yk = _shell_profile(subject, values)
    lut = np.interp(_LUT_MM, xk, yk).astype(np.float32)
    out = lut[_dist_index(subject)]
    inside = subject.dist < 1.0
    s_csf = values["csf"]
    out += np.where(
        inside,
        subject.gm * (values["gm"] - s_csf)
        + subject.wm * (values["wm"] - s_csf)
        + subject.neck * (values["muscle"] - s_csf),
        0.0,
    ).astype(np.float32)
    # dura: a thin enhancing layer at the outer edge of the extra-axial CSF
    if params.contrast:
        dura = np.clip(1.0 - np.abs(subject.dist - subject.shells[0]) / 0.8, 0, 1) * 0.5
        out += (dura * (values["dura"] - out)).astype(np.float32)
    _add_eyes(subject, out, values)
    for box, tissue, frac in normal_structures(subject):
        region = out[box]
        region += frac * (values[tissue] - region)
        out[box] = region
    for lesion in lesions:
        region = out[lesion.box]
        for comp in lesion.compartments:
            region += comp.frac * (values[comp.tissue] - region)
        if lesion.r2p_extra is not None and params.kind in {"GRE", "DWI"}:
            region *= np.exp(-params.te * lesion.r2p_extra * (1.0 if params.kind == "GRE" else 0.3))
        out[lesion.box] = region
    return np.asarray(out, dtype=np.float32)


#: Iron-rich deep grey nuclei: (centre template-LPS mm, radii mm), both sides.
_IRON_NUCLEI = (
    ((19.0, 2.0, 0.0), (6.0, 10.0, 6.0)),  # globus pallidus
    ((6.0, 18.0, -8.0), (4.0, 5.0, 5.0)),  # red nucleus / substantia nigra
    ((14.0, 58.0, -34.0), (7.0, 8.0, 6.0)),  # dentate nucleus
)


def _box_axes(
    subject: SubjectAnatomy, lo_mm: NDArray[np.float64], hi_mm: NDArray[np.float64]
) -> tuple[tuple[slice, slice, slice], list[NDArray[np.float64]]]:
    s = subject.grid_spacing
    lo = np.maximum(np.floor((lo_mm - subject.grid_origin) / s).astype(int), 0)
    hi = np.minimum(
        np.ceil((hi_mm - subject.grid_origin) / s).astype(int) + 1, np.array(subject.shape)
    )
    box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
    axes = [subject.grid_origin[i] + s * np.arange(lo[i], hi[i]) for i in range(3)]
    return box, axes


def normal_structures(
    subject: SubjectAnatomy,
) -> list[tuple[tuple[slice, slice, slice], str, FloatArray]]:
    """Normal structures drawn over the tissue maps: the superior sagittal sinus and
    the iron-rich deep grey nuclei. (box, tissue, fraction) each; cached per subject."""
    cached = getattr(subject, "_normal_structures", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    out: list[tuple[tuple[slice, slice, slice], str, FloatArray]] = []
    # superior sagittal sinus: midline, in the extra-axial layer, above the ventricles
    inner = subject.shells[0]
    box, (x, _, z) = _box_axes(
        subject, np.array([-8.0, -120.0, -5.0]), np.array([8.0, 120.0, 120.0])
    )
    dist = subject.dist[box]
    width = 3.0 + 0.03 * np.clip(z, 0, 100)[None, None, :]
    across = np.exp(-((x[:, None, None] / width) ** 2))
    band = np.clip(1.5 - np.abs(dist - inner) / (inner / 2 + 1.0), 0, 1)
    above = np.clip((z[None, None, :] - 5.0) / 10.0, 0, 1)
    out.append((box, "venous_sinus", (0.9 * across * band * above).astype(np.float32)))
    for centre, radii in _IRON_NUCLEI:
        for side in (-1.0, 1.0):
            c = np.array([side * centre[0], centre[1], centre[2]])
            r = np.asarray(radii)
            box, axes = _box_axes(subject, c - r - 2, c + r + 2)
            d2 = (
                ((axes[0] - c[0]) / r[0])[:, None, None] ** 2
                + ((axes[1] - c[1]) / r[1])[None, :, None] ** 2
                + ((axes[2] - c[2]) / r[2])[None, None, :] ** 2
            )
            brain = np.clip(subject.gm[box] + subject.wm[box], 0, 1)
            frac = np.clip((1.0 - d2) * 2.0, 0, 1) * brain
            out.append((box, "iron_gm", frac.astype(np.float32)))
    object.__setattr__(subject, "_normal_structures", out)
    return out


#: Distances (mm) of the shell lookup table: 0.05 mm steps from -2 to +40 mm.
_LUT_MM = np.arange(-2.0, 40.0, 0.05)


def _dist_index(subject: SubjectAnatomy) -> NDArray[np.intp]:
    """Lookup-table index of every grid voxel's distance (computed once per subject)."""
    cached = getattr(subject, "_dist_index", None)
    if cached is None:
        idx = np.rint((np.clip(subject.dist, -2.0, 39.9) + 2.0) / 0.05)
        cached = idx.astype(np.int16)
        object.__setattr__(subject, "_dist_index", cached)
    return cached  # type: ignore[no-any-return]


def _add_eyes(subject: SubjectAnatomy, out: FloatArray, values: dict[str, float]) -> None:
    s = subject.grid_spacing
    for centre in EYE_CENTRES_LPS:
        c = np.asarray(centre)
        half = EYE_RADIUS_MM + 8.0
        lo = np.maximum(np.floor((c - half - subject.grid_origin) / s).astype(int), 0)
        hi = np.minimum(
            np.ceil((c + half - subject.grid_origin) / s).astype(int) + 1, np.array(subject.shape)
        )
        box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
        xs = [subject.grid_origin[i] + s * np.arange(lo[i], hi[i]) - c[i] for i in range(3)]
        r = np.sqrt(
            xs[0][:, None, None] ** 2 + xs[1][None, :, None] ** 2 + xs[2][None, None, :] ** 2
        )
        brain = np.clip(subject.gm[box] + subject.wm[box] + subject.csf[box], 0, 1)
        free = 1.0 - brain
        globe = np.clip(EYE_RADIUS_MM - r + 0.5, 0, 1) * free
        orbit_fat = np.clip(EYE_RADIUS_MM + 6.0 - r, 0, 1) * free * (1 - globe)
        region = out[box]
        region += orbit_fat * (values["fat"] - region)
        region += globe * (values["vitreous"] - region)
        out[box] = region


def smooth_for_resolution(volume: FloatArray, voxel_mm: float, grid_mm: float) -> FloatArray:
    """Blur a grid volume to the resolution of a coarser acquisition (anti-aliasing)."""
    sigma = 0.4 * max(voxel_mm / grid_mm - 1.0, 0.0)
    if sigma < 0.3:
        return volume
    return np.asarray(ndi.gaussian_filter(volume, sigma), dtype=np.float32)
