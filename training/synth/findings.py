"""Lesion generators: where each finding goes, its compartments and its truth mask.

Placing a finding is two steps, because space-occupying lesions must shape the
subject's warp: :func:`plan_findings` draws locations in template-LPS mm (and the
ventricular enlargement of hydrocephalus) before the anatomy is made, and
:func:`render_lesions` draws each lesion's compartments (tissue fractions inside a
bounding box of the subject grid) once the anatomy exists.

Each lesion carries a :class:`FindingDescriptor` (side, lobe, size, age of blood...)
from which the report is written, so the text agrees with the image.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from training.synth.anatomy import SubjectAnatomy, load_template

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float32]

FINDINGS: tuple[str, ...] = (
    "acute_infarct",
    "haemorrhage",
    "meningioma",
    "hydrocephalus",
    "demyelination",
    "tumour",
)


@dataclass
class FindingDescriptor:
    """What a radiologist would say about one finding (drives the report).

    Attributes:
        finding: finding id (one of :data:`FINDINGS`).
        side: "left", "right", "bilateral" or "midline".
        location: anatomical region words, e.g. ["frontal lobe"].
        size_mm: largest diameter (mm) of the lesion (or of the largest one).
        count: number of lesions (demyelination plaques, emboli).
        attributes: finding-specific facts: "territory", "blood_age", "enhancing",
            "oedema", "mass_effect", "necrosis", "active_count", "subtle".
    """

    finding: str
    side: str
    location: list[str]
    size_mm: float
    count: int = 1
    attributes: dict[str, object] = field(default_factory=dict)


@dataclass
class LesionPlan:
    """A finding's placement decided before the anatomy is warped.

    Attributes:
        finding: finding id.
        centres: lesion centres (template-LPS mm); several for multifocal findings.
        radii: radius (mm) per centre.
        variant: sub-type ("mca", "lacunar", "lobar", "convexity", ...).
        mass_effect: strength of the displacement around the first centre (0 = none).
        params: other drawn parameters (blood age, enhancing flags...).
    """

    finding: str
    centres: list[NDArray[np.float64]]
    radii: list[float]
    variant: str
    mass_effect: float = 0.0
    params: dict[str, object] = field(default_factory=dict)


@dataclass
class Compartment:
    """Fraction (0..1) of each voxel of a lesion's box occupied by one lesion tissue."""

    tissue: str
    frac: FloatArray


@dataclass
class Lesion:
    """One rendered finding on the subject grid.

    Attributes:
        finding: finding id.
        box: index slices (x, y, z) of the subject grid that hold the lesion.
        compartments: lesion tissues, applied in order (later ones win).
        mask: truth mask of the abnormality in the box (oedema excluded; see
            :meth:`extent` for the whole lesion).
        r2p_extra: blooming susceptibility R2' (1/ms) in the box, or None.
        descriptor: words for the report.
    """

    finding: str
    box: tuple[slice, slice, slice]
    compartments: list[Compartment]
    mask: NDArray[np.bool_]
    descriptor: FindingDescriptor
    r2p_extra: FloatArray | None = None

    def extent(self) -> NDArray[np.bool_]:
        """The lesion's whole extent in the box: the truth mask and every voxel that is
        mostly one of its tissues, perilesional oedema included (as BraTS's "whole
        tumour" is to its "tumour core")."""
        extent = self.mask.copy()
        for comp in self.compartments:
            extent |= comp.frac > 0.5
        return extent


# --------------------------------------------------------------------------- anatomy words


def side_of(x_lps: float) -> str:
    """Patient side of a template-LPS x coordinate (LPS x grows to the patient's left)."""
    if abs(x_lps) < 4.0:
        return "midline"
    return "left" if x_lps > 0 else "right"


def region_of(p: NDArray[np.float64]) -> str:
    """Coarse anatomical region of a template-LPS point (MNI-like coordinates)."""
    x, y_ras, z = abs(float(p[0])), -float(p[1]), float(p[2])
    if z < -22 and y_ras < -38:
        return "cerebellar hemisphere" if x > 10 else "vermis"
    if z < -8 and x < 14 and -42 < y_ras < -10:
        return "brainstem"
    if x < 22 and -34 < y_ras < -4 and -4 < z < 18:
        return "thalamus"
    if x < 32 and -12 < y_ras < 24 and -8 < z < 22:
        return "basal ganglia"
    if y_ras < -72:
        return "occipital lobe"
    if z < 8 and x > 30 and -70 < y_ras < 22:
        return "temporal lobe"
    if y_ras < -24 and z > 12:
        return "parietal lobe"
    if y_ras >= -24:
        return "frontal lobe"
    return "parieto-occipital region"


# --------------------------------------------------------------------------- planning

_REGIONS: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    # |x|, y (RAS), z ranges in MNI mm
    "mca": ((28, 62), (-55, 35), (-10, 50)),
    "aca": ((4, 18), (-30, 50), (25, 65)),
    "pca": ((6, 35), (-95, -65), (-10, 25)),
    "lacunar": ((12, 30), (-25, 18), (-4, 18)),
    "cerebellar": ((12, 42), (-80, -45), (-45, -22)),
    "lobar": ((20, 55), (-75, 45), (0, 55)),
    "deep": ((14, 30), (-28, 12), (-2, 16)),
    "tumour": ((18, 50), (-70, 45), (-20, 50)),
    "periventricular": ((8, 30), (-45, 25), (5, 32)),
    "juxtacortical": ((20, 58), (-80, 50), (-5, 62)),
    "infratentorial": ((0, 18), (-45, -20), (-40, -15)),
}


def _sample_point(
    rng: np.random.Generator,
    region: str,
    *,
    need: str = "brain",
    side: int | None = None,
) -> NDArray[np.float64]:
    """A template-LPS point in a named region, on tissue of the requested kind."""
    tpl = load_template()
    (x0, x1), (y0, y1), (z0, z1) = _REGIONS[region]
    sgn = side if side is not None else (1 if rng.random() < 0.5 else -1)
    for _ in range(200):
        x_abs = rng.uniform(x0, x1)
        p = np.array([sgn * x_abs, -rng.uniform(y0, y1), rng.uniform(z0, z1)])
        idx = np.round(p - tpl.origin).astype(int)
        if np.any(idx < 0) or np.any(idx >= np.array(tpl.shape)):
            continue
        gm = tpl.gm[tuple(idx)]
        wm = tpl.wm[tuple(idx)]
        if need == "wm" and wm > 0.6:
            return p
        if need == "brain" and gm + wm > 0.7:
            return p
        if need == "gm" and gm > 0.5:
            return p
    return p


def _surface_point(rng: np.random.Generator) -> tuple[NDArray[np.float64], str]:
    """A point on the dura over the convexity, falx, sphenoid wing or tentorium."""
    tpl = load_template()
    variant = str(rng.choice(["convexity", "parasagittal", "sphenoid wing", "posterior fossa"]))
    sgn = 1 if rng.random() < 0.5 else -1
    for _ in range(400):
        if variant == "convexity":
            direction = np.array([sgn * rng.uniform(0.5, 1.0), rng.uniform(-0.7, 0.7), 0.6])
        elif variant == "parasagittal":
            direction = np.array([sgn * rng.uniform(0.05, 0.25), rng.uniform(-0.6, 0.5), 1.0])
        elif variant == "sphenoid wing":
            direction = np.array([sgn * rng.uniform(0.5, 0.9), -rng.uniform(0.6, 1.0), -0.25])
        else:
            direction = np.array([sgn * rng.uniform(0.3, 0.8), rng.uniform(0.7, 1.0), -0.6])
        direction /= np.linalg.norm(direction)
        centre = (
            np.array([0.0, 10.0, 15.0])
            if variant != "posterior fossa"
            else np.array([0.0, 50.0, -30.0])
        )
        # march outwards until leaving the brain
        for r in np.arange(20.0, 110.0, 1.0):
            p = centre + r * direction
            idx = np.round(p - tpl.origin).astype(int)
            if np.any(idx < 0) or np.any(idx >= np.array(tpl.shape)):
                break
            if tpl.dist[tuple(idx)] > 0.0:
                return p, variant
    return centre + 60 * direction, variant


def plan_findings(
    rng: np.random.Generator, present: dict[str, bool]
) -> tuple[list[LesionPlan], float | None]:
    """Decide location, size and sub-type of every present finding.

    Returns:
        The plans, and the ventricular expansion forced by hydrocephalus (or None).
    """
    plans: list[LesionPlan] = []
    ventricles: float | None = None
    for finding in FINDINGS:
        if not present.get(finding, False):
            continue
        if finding == "acute_infarct":
            variant = str(
                rng.choice(["mca", "mca", "lacunar", "pca", "aca", "cerebellar", "emboli"])
            )
            side = 1 if rng.random() < 0.5 else -1
            if variant == "emboli":
                n = int(rng.integers(2, 6))
                centres = [_sample_point(rng, "mca", side=side) for _ in range(n)]
                radii = [float(rng.uniform(2.5, 6.0)) for _ in range(n)]
            else:
                lo, hi = {
                    "mca": (8, 32),
                    "lacunar": (3, 8),
                    "pca": (8, 24),
                    "aca": (6, 20),
                    "cerebellar": (5, 18),
                }[variant]
                centres = [_sample_point(rng, variant, side=side)]
                radii = [float(rng.uniform(lo, hi))]
            plans.append(LesionPlan(finding, centres, radii, variant))
        elif finding == "haemorrhage":
            variant = str(rng.choice(["lobar", "deep", "deep", "cerebellar", "small"]))
            region = "lobar" if variant == "small" else variant
            age = str(
                rng.choice(["hyperacute", "acute", "early_subacute", "late_subacute", "chronic"])
            )
            radius = float(rng.uniform(3, 6)) if variant == "small" else float(rng.uniform(7, 24))
            centre = _sample_point(rng, region)
            mass = 0.25 * np.clip(radius / 20, 0, 1) if age != "chronic" else 0.0
            plans.append(
                LesionPlan(finding, [centre], [radius], variant, float(mass), {"blood_age": age})
            )
        elif finding == "meningioma":
            p, variant = _surface_point(rng)
            radius = float(rng.uniform(6, 26))
            plans.append(
                LesionPlan(
                    finding,
                    [p],
                    [radius],
                    variant,
                    float(0.45 * np.clip(radius / 22, 0.2, 1.0)),
                    {"oedema": bool(radius > 15 and rng.random() < 0.4)},
                )
            )
        elif finding == "hydrocephalus":
            ventricles = float(rng.uniform(0.55, 0.8))
            plans.append(
                LesionPlan(
                    finding,
                    [np.array([0.0, 8.0, 14.0])],
                    [30.0],
                    str(rng.choice(["communicating", "obstructive"])),
                    params={"transependymal": bool(rng.random() < 0.7)},
                )
            )
        elif finding == "demyelination":
            n = int(rng.integers(2, 14))
            kinds = rng.choice(
                ["periventricular", "periventricular", "juxtacortical", "infratentorial"], size=n
            )
            centres = [_sample_point(rng, str(k), need="wm") for k in kinds]
            radii = [float(rng.uniform(1.8, 6.5)) for _ in range(n)]
            n_active = int(rng.integers(0, min(3, n) + 1)) if rng.random() < 0.4 else 0
            plans.append(
                LesionPlan(
                    finding,
                    centres,
                    radii,
                    "multiple sclerosis",
                    params={"active": n_active, "kinds": [str(k) for k in kinds]},
                )
            )
        elif finding == "tumour":
            variant = str(rng.choice(["high_grade", "high_grade", "low_grade", "metastasis"]))
            radius = (
                float(rng.uniform(5, 14)) if variant == "metastasis" else float(rng.uniform(12, 30))
            )
            centre = _sample_point(rng, "tumour", need="wm")
            plans.append(
                LesionPlan(
                    finding,
                    [centre],
                    [radius],
                    variant,
                    float(0.35 * np.clip(radius / 25, 0.2, 1.0)),
                )
            )
    return plans, ventricles


def mass_effects(plans: list[LesionPlan]) -> list[tuple[NDArray[np.float64], float, float]]:
    """(centre, radius, strength) of the plans that displace brain (for the warp)."""
    return [(p.centres[0], p.radii[0], p.mass_effect) for p in plans if p.mass_effect > 0]


# --------------------------------------------------------------------------- rendering


def _box(
    subject: SubjectAnatomy, centre: NDArray[np.float64], half_mm: float
) -> tuple[slice, slice, slice]:
    s = subject.grid_spacing
    idx = (centre - subject.grid_origin) / s
    lo = np.maximum(np.floor(idx - half_mm / s).astype(int), 0)
    hi = np.minimum(np.ceil(idx + half_mm / s).astype(int) + 1, np.array(subject.shape))
    return (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))


def _box_coords(
    subject: SubjectAnatomy, box: tuple[slice, slice, slice]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    s = subject.grid_spacing
    o = subject.grid_origin
    xs = o[0] + s * np.arange(box[0].start, box[0].stop)
    ys = o[1] + s * np.arange(box[1].start, box[1].stop)
    zs = o[2] + s * np.arange(box[2].start, box[2].stop)
    return xs[:, None, None], ys[None, :, None], zs[None, None, :]


def _random_rotation(rng: np.random.Generator) -> NDArray[np.float64]:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    a, b, c, d = q
    return np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d],
        ]
    )


def _blob(
    rng: np.random.Generator,
    subject: SubjectAnatomy,
    box: tuple[slice, slice, slice],
    centre: NDArray[np.float64],
    radii: NDArray[np.float64],
    *,
    roughness: float = 0.25,
    rotation: NDArray[np.float64] | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Soft irregular ellipsoid: (fraction in [0, 1], normalised radius field)."""
    x, y, z = _box_coords(subject, box)
    rot = _random_rotation(rng) if rotation is None else rotation
    d = [x - centre[0], y - centre[1], z - centre[2]]
    u = [rot[0, i] * d[0] + rot[1, i] * d[1] + rot[2, i] * d[2] for i in range(3)]
    r = np.sqrt(sum((u[i] / radii[i]) ** 2 for i in range(3)))
    shape = r.shape
    noise = rng.normal(size=tuple(max(3, n // 4 + 2) for n in shape))
    noise = ndi.gaussian_filter(noise, 1.0)
    noise /= noise.std() + 1e-6
    zoom = [shape[i] / noise.shape[i] for i in range(3)]
    noise_full = ndi.zoom(noise, zoom, order=1)[: shape[0], : shape[1], : shape[2]]
    pad = [(0, shape[i] - noise_full.shape[i]) for i in range(3)]
    noise_full = np.pad(noise_full, pad, mode="edge")
    rr = r * (1.0 + roughness * np.tanh(noise_full))
    edge = max(0.6 * subject.grid_spacing / float(np.min(radii)), 0.08)
    frac = np.clip((1.0 - rr) / edge + 0.5, 0.0, 1.0).astype(np.float32)
    return frac, rr.astype(np.float32)


def _texture(rng: np.random.Generator, shape: tuple[int, ...], strength: float) -> FloatArray:
    """Smooth multiplicative texture in [1 - strength, 1]: heterogeneous lesion signal
    (the lesion tissue mixes with what lies beneath where the texture is low)."""
    coarse = rng.normal(size=tuple(max(3, n // 3 + 2) for n in shape))
    coarse = ndi.gaussian_filter(coarse, 0.8)
    coarse = (coarse - coarse.min()) / (np.ptp(coarse) + 1e-6)
    zoom = [shape[i] / coarse.shape[i] for i in range(len(shape))]
    field = ndi.zoom(coarse, zoom, order=1)
    pad = [(0, max(0, shape[i] - field.shape[i])) for i in range(len(shape))]
    field = np.pad(field, pad, mode="edge")[tuple(slice(0, n) for n in shape)]
    return (1.0 - strength * field).astype(np.float32)


def _size(mask: NDArray[np.bool_], spacing: float) -> float:
    if not mask.any():
        return 0.0
    idx = np.argwhere(mask)
    return float((idx.max(0) - idx.min(0) + 1).max() * spacing)


def _location(centres: list[NDArray[np.float64]]) -> tuple[str, list[str]]:
    sides = {side_of(float(c[0])) for c in centres}
    side = sides.pop() if len(sides) == 1 else "bilateral"
    regions: list[str] = []
    for c in centres:
        reg = region_of(c)
        if reg not in regions:
            regions.append(reg)
    return side, regions


def render_lesions(
    rng: np.random.Generator, plans: list[LesionPlan], subject: SubjectAnatomy
) -> list[Lesion]:
    """Draw the compartments and truth masks of planned findings on a subject grid."""
    lesions: list[Lesion] = []
    for plan in plans:
        render = _RENDERERS[plan.finding]
        lesion = render(rng, plan, subject)
        if not lesion.mask.any():
            logger.debug("finding %s rendered empty; enlarging", plan.finding)
        lesions.append(lesion)
    return lesions


def _union_box(
    subject: SubjectAnatomy, centres: list[NDArray[np.float64]], half: float
) -> tuple[slice, slice, slice]:
    boxes = [_box(subject, c, half) for c in centres]
    return tuple(  # type: ignore[return-value]
        slice(min(b[i].start for b in boxes), max(b[i].stop for b in boxes)) for i in range(3)
    )


def _render_infarct(rng: np.random.Generator, plan: LesionPlan, subject: SubjectAnatomy) -> Lesion:
    box = _union_box(subject, plan.centres, max(plan.radii) * 2.2 + 4)
    brain = subject.gm[box] + subject.wm[box]
    core = np.zeros(brain.shape, np.float32)
    for c, r in zip(plan.centres, plan.radii, strict=True):
        if plan.variant in {"mca", "pca", "aca"}:
            # wedge: elongated along the line from the brain centre through the lesion
            radial = c - np.array([0.0, 8.0, 14.0])
            radial /= np.linalg.norm(radial) + 1e-6
            other = np.cross(radial, [0.0, 0.0, 1.0])
            other /= np.linalg.norm(other) + 1e-6
            rot = np.stack([radial, other, np.cross(radial, other)], axis=1)
            radii = np.array([r * 1.3, r, r * 0.8])
            frac, _ = _blob(rng, subject, box, c, radii, rotation=rot, roughness=0.3)
        else:
            frac, _ = _blob(rng, subject, box, c, np.array([r, r * 0.8, r * 0.9]))
        core = np.maximum(core, frac)
    core *= np.clip(brain, 0, 1)
    penumbra = np.clip(ndi.gaussian_filter(core, 1.0) * 1.2 - core, 0.0, 0.5) * brain
    mask = core > 0.5
    side, location = _location(plan.centres)
    size = _size(mask, subject.grid_spacing)
    territory = {
        "mca": "middle cerebral artery",
        "aca": "anterior cerebral artery",
        "pca": "posterior cerebral artery",
        "cerebellar": "posterior inferior cerebellar artery",
        "lacunar": "lenticulostriate",
        "emboli": "middle cerebral artery",
    }[plan.variant]
    return Lesion(
        plan.finding,
        box,
        [
            Compartment("infarct_penumbra", penumbra),
            Compartment("infarct_core", core * _texture(rng, core.shape, 0.25)),
        ],
        mask,
        FindingDescriptor(
            plan.finding,
            side,
            location,
            size,
            count=len(plan.centres),
            attributes={
                "territory": territory,
                "variant": plan.variant,
                "subtle": bool(size < 10),
            },
        ),
    )


def _render_haemorrhage(
    rng: np.random.Generator, plan: LesionPlan, subject: SubjectAnatomy
) -> Lesion:
    c, r = plan.centres[0], plan.radii[0]
    age = str(plan.params["blood_age"])
    box = _box(subject, c, r * 2.5 + 6)
    blood, rr = _blob(rng, subject, box, c, np.array([r, r * 0.85, r * 0.9]), roughness=0.2)
    brain = np.clip(subject.gm[box] + subject.wm[box] + 0.3, 0, 1)
    blood *= brain
    comps: list[Compartment] = []
    has_oedema = age in {"acute", "early_subacute", "late_subacute", "hyperacute"} and r > 5
    if has_oedema:
        oed = np.clip((1.0 + 0.6 - rr) / 0.3, 0, 1) * (1 - blood) * subject.wm[box]
        comps.append(Compartment("oedema", oed.astype(np.float32)))
    tissue = {
        "hyperacute": "blood_hyperacute",
        "acute": "blood_acute",
        "early_subacute": "blood_early_subacute",
        "late_subacute": "blood_late_subacute",
        "chronic": "blood_chronic",
    }[age]
    comps.append(Compartment(tissue, blood * _texture(rng, blood.shape, 0.3)))
    if age in {"late_subacute", "chronic"}:
        rim = np.clip(1.0 - np.abs(rr - 1.0) / 0.12, 0, 1) * 0.8
        comps.append(Compartment("blood_chronic", rim.astype(np.float32)))
    bloom = ndi.gaussian_filter(blood, 1.5 / subject.grid_spacing) * 0.25
    mask = blood > 0.5
    side, location = _location(plan.centres)
    return Lesion(
        plan.finding,
        box,
        comps,
        mask,
        FindingDescriptor(
            plan.finding,
            side,
            location,
            _size(mask, subject.grid_spacing),
            attributes={
                "blood_age": age,
                "oedema": has_oedema,
                "variant": plan.variant,
                "mass_effect": plan.mass_effect > 0.15,
                "subtle": bool(r < 6),
            },
        ),
        r2p_extra=bloom.astype(np.float32),
    )


def _render_meningioma(
    rng: np.random.Generator, plan: LesionPlan, subject: SubjectAnatomy
) -> Lesion:
    c, r = plan.centres[0], plan.radii[0]
    box = _box(subject, c, r * 2.6 + 8)
    # dural-based: the centre sits on the dura; the mass grows inwards, flat on the skull
    frac, rr = _blob(rng, subject, box, c, np.array([r, r * 0.9, r * 0.85]), roughness=0.1)
    dist = subject.dist[box]
    inner = subject.shells[0]
    frac *= np.clip(inner - dist, 0, 1)
    tail = (
        np.clip(1.0 - np.abs(dist - inner * 0.8) / 0.9, 0, 1)
        * np.clip((2.0 - rr) / 0.4, 0, 1)
        * (1 - frac)
    )
    comps = [Compartment("dural_tail", (0.8 * tail).astype(np.float32))]
    if bool(plan.params.get("oedema", False)):
        oed = np.clip((1.0 + 0.5 - rr) / 0.3, 0, 1) * (1 - frac) * subject.wm[box]
        comps.append(Compartment("oedema", oed.astype(np.float32)))
    comps.append(Compartment("meningioma", frac * _texture(rng, frac.shape, 0.1)))
    mask = frac > 0.5
    side, location = _location(plan.centres)
    return Lesion(
        plan.finding,
        box,
        comps,
        mask,
        FindingDescriptor(
            plan.finding,
            side,
            [plan.variant, *location],
            _size(mask, subject.grid_spacing),
            attributes={
                "variant": plan.variant,
                "oedema": bool(plan.params.get("oedema", False)),
                "mass_effect": r > 14,
                "subtle": bool(r < 9),
            },
        ),
    )


def _render_hydrocephalus(
    rng: np.random.Generator, plan: LesionPlan, subject: SubjectAnatomy
) -> Lesion:
    vent = subject.ventricles()
    box = _box(subject, plan.centres[0], 75.0)
    v = vent[box]
    comps: list[Compartment] = []
    if bool(plan.params.get("transependymal", True)):
        halo = ndi.gaussian_filter(v, 2.5 / subject.grid_spacing)
        band = np.clip(halo * 2.2 - v, 0, 0.85) * subject.wm[box]
        comps.append(Compartment("periventricular_oedema", band.astype(np.float32)))
    mask = v > 0.5
    width = _size(mask, subject.grid_spacing)
    _ = rng
    return Lesion(
        plan.finding,
        box,
        comps,
        mask,
        FindingDescriptor(
            plan.finding,
            "bilateral",
            ["lateral ventricles"],
            width,
            attributes={
                "variant": plan.variant,
                "transependymal": bool(plan.params.get("transependymal", True)),
                "expansion": subject.ventricle_expansion,
            },
        ),
    )


def _render_demyelination(
    rng: np.random.Generator, plan: LesionPlan, subject: SubjectAnatomy
) -> Lesion:
    box = _union_box(subject, plan.centres, max(plan.radii) * 2 + 4)
    plaque = np.zeros(tuple(s.stop - s.start for s in box), np.float32)
    active = np.zeros_like(plaque)
    black = np.zeros_like(plaque)
    n_active = int(plan.params.get("active", 0))  # type: ignore[call-overload]
    kinds = list(plan.params.get("kinds", []))  # type: ignore[call-overload]
    for i, (c, r) in enumerate(zip(plan.centres, plan.radii, strict=True)):
        if kinds and kinds[i] == "periventricular":
            # Dawson finger: long axis radial from the ventricles
            radial = c - np.array([0.0, 8.0, 14.0])
            radial /= np.linalg.norm(radial) + 1e-6
            other = np.cross(radial, [1.0, 0.0, 0.0])
            other /= np.linalg.norm(other) + 1e-6
            rot = np.stack([radial, other, np.cross(radial, other)], axis=1)
            frac, _ = _blob(
                rng, subject, box, c, np.array([r * 1.6, r * 0.8, r * 0.8]), rotation=rot
            )
        else:
            frac, _ = _blob(rng, subject, box, c, np.array([r, r * 0.8, r * 0.9]))
        if i < n_active:
            active = np.maximum(active, frac)
        elif rng.random() < 0.15:
            black = np.maximum(black, frac * 0.8)
        else:
            plaque = np.maximum(plaque, frac)
    tissue = np.clip(subject.gm[box] + subject.wm[box] + 0.2, 0, 1)
    comps = [
        Compartment("plaque", plaque * tissue),
        Compartment("plaque_black_hole", black * tissue),
        Compartment("plaque_active", active * tissue),
    ]
    mask = (plaque + black + active) * tissue > 0.5
    side, location = _location(plan.centres)
    kinds_set = sorted(set(kinds))
    return Lesion(
        plan.finding,
        box,
        comps,
        mask,
        FindingDescriptor(
            plan.finding,
            side,
            kinds_set or location,
            max(2 * r for r in plan.radii),
            count=len(plan.centres),
            attributes={"active_count": n_active, "regions": location},
        ),
    )


def _render_tumour(rng: np.random.Generator, plan: LesionPlan, subject: SubjectAnatomy) -> Lesion:
    c, r = plan.centres[0], plan.radii[0]
    box = _box(subject, c, r * 3.2 + 6)
    frac, rr = _blob(rng, subject, box, c, np.array([r, r * 0.85, r * 0.9]), roughness=0.3)
    frac *= np.clip(subject.gm[box] + subject.wm[box] + 0.5, 0, 1)
    comps: list[Compartment] = []
    oed_extent = {"high_grade": 1.2, "metastasis": 1.6, "low_grade": 0.3}[plan.variant]
    oed = np.clip((1.0 + oed_extent - rr) / 0.5, 0, 1) * (1 - frac) * subject.wm[box]
    comps.append(Compartment("oedema", oed.astype(np.float32)))
    necrotic = plan.variant == "high_grade" or (plan.variant == "metastasis" and r > 9)
    if plan.variant == "low_grade":
        comps.append(Compartment("tumour_solid", frac * _texture(rng, frac.shape, 0.35)))
    else:
        comps.append(Compartment("tumour_rim", frac * _texture(rng, frac.shape, 0.3)))
        if necrotic:
            core = np.clip((0.62 - rr) / 0.12, 0, 1) * frac
            comps.append(Compartment("tumour_necrosis", core.astype(np.float32)))
    mask = frac > 0.5
    side, location = _location(plan.centres)
    return Lesion(
        plan.finding,
        box,
        comps,
        mask,
        FindingDescriptor(
            plan.finding,
            side,
            location,
            _size(mask, subject.grid_spacing),
            attributes={
                "variant": plan.variant,
                "enhancing": plan.variant != "low_grade",
                "necrosis": necrotic,
                "oedema": plan.variant != "low_grade",
                "mass_effect": plan.mass_effect > 0.15,
            },
        ),
    )


_RENDERERS = {
    "acute_infarct": _render_infarct,
    "haemorrhage": _render_haemorrhage,
    "meningioma": _render_meningioma,
    "hydrocephalus": _render_hydrocephalus,
    "demyelination": _render_demyelination,
    "tumour": _render_tumour,
}
