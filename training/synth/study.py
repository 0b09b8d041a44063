"""The top-level generator: one synthetic brain MRI study, its report and its truth.

:func:`generate_study` is deterministic in its seed: the site, the findings, the
anatomy, the lesions, every series' geometry, noise and header values, the UIDs
and the report all come from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import SimpleITK as sitk
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from scipy import ndimage as ndi

from dicom_node.errors import ConfigError
from training.synth.anatomy import SubjectAnatomy, make_subject
from training.synth.contrast import SequenceParams
from training.synth.dicom_writer import (
    Frame,
    SeriesHeader,
    StudyHeader,
    build_series_datasets,
    synthetic_uid,
    write_datasets,
)
from training.synth.findings import (
    FINDINGS,
    Lesion,
    mass_effects,
    plan_findings,
    render_lesions,
)
from training.synth.geometry import SliceGeometry, grid_image, plan_slices, resample_to_slices
from training.synth.render import signal_volume
from training.synth.reports import Report, generate_report
from training.synth.sites import SITES, Protocol, Site, get_site

logger = logging.getLogger(__name__)

SEQUENCES: tuple[str, ...] = ("T1", "T1C", "T2", "FLAIR", "DWI", "ADC", "SWI", "LOCALIZER")
Size = Literal["full", "small"]
U16 = NDArray[np.uint16]


@dataclass
class FindingMask:
    """Truth mask of one finding in patient coordinates.

    Attributes:
        array: bool array indexed [i, j, k] (voxel index along the affine's columns).
        affine_lps: 4x4 from (i, j, k, 1) to patient LPS mm (rotated, not axis-aligned).
    """

    array: NDArray[np.bool_]
    affine_lps: NDArray[np.float64]

    def world_points(self) -> NDArray[np.float64]:
        """LPS coordinates (N x 3) of the voxels inside the mask."""
        idx = np.argwhere(self.array).astype(np.float64)
        return (self.affine_lps[:3, :3] @ idx.T).T + self.affine_lps[:3, 3]


@dataclass
class SyntheticSeries:
    """One DICOM series of a synthetic study.

    Attributes:
        series_uid: SeriesInstanceUID.
        series_number: SeriesNumber.
        sequence: truth class (one of :data:`SEQUENCES`).
        description: SeriesDescription.
        role: what the series holds within its class: "image", "b0", "trace",
            "b0+trace", "adc", "magnitude", "phase", "minip", "localizer".
        geometries: one slice stack (three for a 3-plane localizer).
        b_values: b-value of each stack (DWI) or empty.
        frames: the images (pixels + per-image header values), in instance order.
        builder: makes the pydicom datasets (see :attr:`datasets`).
    """

    series_uid: str
    series_number: int
    sequence: str
    description: str
    role: str
    geometries: list[SliceGeometry]
    b_values: list[float]
    frames: list[Frame]
    builder: Callable[[], list[Dataset]] = field(repr=False)
    implicit_vr: bool = False
    _datasets: list[Dataset] | None = field(default=None, repr=False)

    @property
    def datasets(self) -> list[Dataset]:
        """The MR Image Storage instances (built on first access, then kept)."""
        if self._datasets is None:
            self._datasets = self.builder()
        return self._datasets

    @property
    def geometry(self) -> SliceGeometry:
        """The (first) slice stack: truth direction, origin and spacing for tests."""
        return self.geometries[0]

    @property
    def direction(self) -> NDArray[np.float64]:
        """Truth 3x3 direction (columns: row dir, column dir, slice normal)."""
        return self.geometry.direction()

    @property
    def origin(self) -> NDArray[np.float64]:
        """Truth origin: ImagePositionPatient of the first slice."""
        return self.geometry.origin

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Truth spacing (column, row, slice) in mm."""
        return self.geometry.spacing()

    def pixels(self, b_value: float | None = None) -> U16:
        """Stored pixel values [slice, row, column] of the first stack (or one b-value)."""
        frames = [f for f in self.frames if b_value is None or f.b_value == b_value]
        geom = frames[0].geometry
        frames = [f for f in frames if f.geometry is geom]
        return np.stack([f.pixels for f in sorted(frames, key=lambda f: f.index)])


@dataclass
class SyntheticStudy:
    """A synthetic study with its truth.

    Attributes:
        study_uid, accession, site, seed: identity.
        findings: truth per finding id (all of :data:`FINDINGS`).
        report: the free-text report (with per-sentence truth).
        series: the DICOM series.
        masks: per present finding, its truth mask in patient LPS coordinates.
        extents: per present finding, the lesion's whole extent (the mask plus
            perilesional tissue such as oedema), same coordinates.
        descriptors: per present finding, the words the report was written from.
        header: patient/study values (SYNTHETIC patient).
        pose: 4x4 template-LPS -> patient LPS of the subject.
        age: patient age in years.
    """

    study_uid: str
    accession: str
    site: str
    seed: int
    findings: dict[str, bool]
    report: Report
    series: list[SyntheticSeries]
    masks: dict[str, FindingMask]
    descriptors: dict[str, object]
    header: StudyHeader
    pose: NDArray[np.float64]
    age: int
    extents: dict[str, FindingMask] = field(default_factory=dict)

    @property
    def normal(self) -> bool:
        """True when no finding is present."""
        return not any(self.findings.values())

    def mirror_matrix(self) -> NDArray[np.float64]:
        """4x4 patient-LPS reflection across the subject's mid-sagittal plane."""
        flip = np.diag([-1.0, 1.0, 1.0, 1.0])
        return self.pose @ flip @ np.linalg.inv(self.pose)

    def series_of(self, sequence: str) -> list[SyntheticSeries]:
        """Series whose truth class is ``sequence``."""
        return [s for s in self.series if s.sequence == sequence]


# ------------------------------------------------------------------------------ sampling


def draw_findings(rng: np.random.Generator) -> dict[str, bool]:
    """About 40% normal; otherwise one (75%) or two (25%) distinct findings."""
    present = dict.fromkeys(FINDINGS, False)
    if rng.random() < 0.4:
        return present
    n = 1 if rng.random() < 0.75 else 2
    for f in rng.choice(FINDINGS, size=n, replace=False):
        present[str(f)] = True
    return present


def _small(proto: Protocol) -> tuple[tuple[int, int], int, float, float]:
    """Reduced matrix / slices for size='small' (same coverage)."""
    rows, cols = (max(64, proto.recon[0] // 2), max(64, proto.recon[1] // 2))
    n = max(8, proto.n_slices // 3) if proto.acq_type == "3D" else proto.n_slices
    factor = proto.n_slices / n
    spacing = (proto.thickness + proto.gap) * factor
    thickness = min(proto.thickness * factor, spacing)
    return (rows, cols), n, thickness, spacing - thickness


def _p995(img: NDArray[np.float32]) -> float:
    """99.5th percentile from a strided sample (fast, deterministic)."""
    sample = img[:, ::3, ::3] if img.ndim == 3 else img
    return float(np.percentile(sample, 99.5))


def _apply_bias(rng: np.random.Generator, img: NDArray[np.float32], strength: float) -> None:
    """Multiply in place by a smooth receive-coil field (separable: in-plane x slice)."""
    nk, nj, ni = img.shape
    i = np.linspace(-1, 1, ni, dtype=np.float32)[None, :]
    j = np.linspace(-1, 1, nj, dtype=np.float32)[:, None]
    k = np.linspace(-1, 1, nk, dtype=np.float32)
    a = rng.normal(0, strength, size=6).astype(np.float32)
    plane = np.exp(a[0] * i + a[1] * j + a[3] * (i**2 + j**2) + a[4] * i * j)
    along = np.exp(a[2] * k + a[5] * k**2)
    img *= plane[None, :, :]
    img *= along[:, None, None]


@functools.lru_cache(maxsize=64)
def _blurred_noise_std(sigma: float) -> float:
    """Standard deviation of unit white noise after the in-plane blur of :func:`_acquire`."""
    noise = np.random.default_rng(0).standard_normal((4, 128, 128)).astype(np.float32)
    blurred = ndi.gaussian_filter(noise, (0, sigma, sigma), truncate=2.5)
    return float(blurred[:, 8:-8, 8:-8].std())


def _acquire(
    rng: np.random.Generator,
    volume: sitk.Image,
    subject: SubjectAnatomy,
    geom: SliceGeometry,
    proto: Protocol,
    *,
    snr: float,
    noise_ref: float | None = None,
) -> tuple[NDArray[np.float32], float]:
    """Sample, blur to acquisition resolution, bias, and add Rician noise.

    Returns:
        (magnitude image [slice, row, column], noise sigma used).
    """
    sub = 2 if geom.thickness >= 2.5 else 1
    img = resample_to_slices(volume, subject.grid_to_world(), geom, sub_slices=sub)
    _apply_bias(rng, img, 0.12)
    if noise_ref is None:
        sample = img[:, ::3, ::3]
        fg = sample[sample > 0.2 * _p995(img)]
        noise_ref = float(fg.mean()) / snr if fg.size else 1e-3
    # acquired resolution lower than reconstructed: the acquired signal and its noise
    # are interpolated together (blurred in-plane); the noise gain keeps sigma exact
    acq_px = max(proto.fov[0] / proto.acq_matrix[0], proto.fov[1] / proto.acq_matrix[1])
    recon_px = min(geom.row_spacing, geom.col_spacing)
    sigma = 0.45 * float(np.sqrt(max((acq_px / recon_px) ** 2 - 1.0, 0.0)))
    blur = sigma > 0.3
    gain = noise_ref / (_blurred_noise_std(round(sigma, 2)) if blur else 1.0)
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    noise *= gain
    img += noise
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    noise *= gain
    if blur:
        img = ndi.gaussian_filter(img, (0, sigma, sigma), truncate=2.5)
        noise = ndi.gaussian_filter(noise, (0, sigma, sigma), truncate=2.5)
    out = np.hypot(img, noise)
    return out.astype(np.float32, copy=False), noise_ref


def _to_u16(img: NDArray[np.float32], target_max: float) -> tuple[U16, float]:
    scale = target_max / max(_p995(img), 1e-6)
    return np.clip(np.rint(img * scale), 0, 65535).astype(np.uint16), scale


@dataclass
class _Context:
    rng: np.random.Generator
    site: Site
    subject: SubjectAnatomy
    lesions: list[Lesion]
    header: StudyHeader
    size: Size
    series: list[SyntheticSeries] = field(default_factory=list)
    next_number: int = 1
    clock: dt.datetime = dt.datetime(2020, 1, 1)
    volumes: dict[SequenceParams, sitk.Image] = field(default_factory=dict)
    snr_scale: float = 1.0

    def volume(self, params: SequenceParams) -> sitk.Image:
        """Noise-free signal of a sequence on the subject grid, as a patient-space image."""
        if params not in self.volumes:
            grid = signal_volume(self.subject, self.lesions, params, self.site.field_t)
            self.volumes[params] = grid_image(grid, self.subject.grid_to_world())
        return self.volumes[params]

    def geometry(
        self, proto: Protocol, plane: str | None = None, *, oblique: bool = True
    ) -> SliceGeometry:
        if self.size == "small":
            matrix, n, thickness, gap = _small(proto)
        else:
            matrix, n, thickness, gap = proto.recon, proto.n_slices, proto.thickness, proto.gap
            if proto.acq_type == "2D":
                n = int(n + self.rng.integers(-2, 3))
        return plan_slices(
            self.rng,
            self.subject.pose,
            plane=(plane or proto.plane),  # type: ignore[arg-type]
            fov_mm=proto.fov,
            matrix=matrix,
            n_slices=n,
            thickness=thickness,
            gap=gap,
            oblique=oblique,
        )

    def add(
        self,
        sequence: str,
        role: str,
        description: str,
        proto: Protocol,
        frames: list[Frame],
        geometries: list[SliceGeometry],
        b_values: list[float] | None = None,
        *,
        derived_from: str = "",
    ) -> SyntheticSeries:
        number = self.next_number
        self.next_number += 1
        uid = synthetic_uid(self.header.study_uid, "series", number)
        self.clock += dt.timedelta(seconds=int(self.rng.integers(40, 400)))
        header = SeriesHeader(
            series_uid=uid,
            series_number=number,
            description=description,
            protocol_name=proto.protocol_name,
            protocol=proto,
            contrast=proto.params.contrast,
            series_time=self.clock.strftime("%H%M%S"),
            derived_from=derived_from,
        )
        builder = functools.partial(build_series_datasets, self.header, self.site, header, frames)
        series = SyntheticSeries(
            series_uid=uid,
            series_number=number,
            sequence=sequence,
            description=description,
            role=role,
            geometries=geometries,
            b_values=b_values or [],
            frames=frames,
            builder=builder,
            implicit_vr=self.site.implicit_vr,
        )
        self.series.append(series)
        return series


def _frames(
    pixels: U16,
    geom: SliceGeometry,
    image_type: tuple[str, ...],
    sequence_name: str,
    b_value: float | None = None,
) -> list[Frame]:
    return [
        Frame(pixels[k], geom, k, b_value, image_type, sequence_name) for k in range(geom.n_slices)
    ]


def _target(ctx: _Context) -> float:
    lo, hi = ctx.site.intensity_max
    return float(ctx.rng.uniform(lo, hi))


def _simple_series(ctx: _Context, sequence: str, proto: Protocol) -> None:
    geom = ctx.geometry(proto)
    img, _ = _acquire(
        ctx.rng, ctx.volume(proto.params), ctx.subject, geom, proto, snr=proto.snr * ctx.snr_scale
    )
    pixels, _ = _to_u16(img, _target(ctx))
    frames = _frames(pixels, geom, proto.image_type, proto.sequence_name)
    ctx.add(sequence, "image", proto.description, proto, frames, [geom])


def _localizer(ctx: _Context, proto: Protocol) -> None:
    frames: list[Frame] = []
    geoms = []
    target = _target(ctx)
    for plane in ("SAG", "COR", "AX"):
        geom = ctx.geometry(proto, plane, oblique=False)
        img, _ = _acquire(
            ctx.rng,
            ctx.volume(proto.params),
            ctx.subject,
            geom,
            proto,
            snr=proto.snr * ctx.snr_scale,
        )
        pixels, _ = _to_u16(img, target)
        frames += _frames(pixels, geom, proto.image_type, proto.sequence_name)
        geoms.append(geom)
    ctx.add("LOCALIZER", "localizer", proto.description, proto, frames, geoms)


def _diffusion(ctx: _Context, proto: Protocol) -> None:
    style = ctx.site.diffusion
    geom = ctx.geometry(proto)
    b = proto.params.b_value
    p0 = SequenceParams("DWI", proto.params.tr, proto.params.te, b_value=0.0)
    img0, sigma = _acquire(
        ctx.rng, ctx.volume(p0), ctx.subject, geom, proto, snr=proto.snr * ctx.snr_scale * 2.2
    )
    img1, _ = _acquire(
        ctx.rng, ctx.volume(proto.params), ctx.subject, geom, proto, snr=0, noise_ref=sigma
    )
    target = _target(ctx)
    scale = target / max(_p995(img0), 1e-6)
    px0 = np.clip(np.rint(img0 * scale), 0, 65535).astype(np.uint16)
    px1 = np.clip(np.rint(img1 * scale), 0, 65535).astype(np.uint16)
    desc = proto.description
    f0 = _frames(px0, geom, style.b0_image_type, style.b0_name, 0.0)
    f1 = _frames(px1, geom, style.trace_image_type, style.trace_name or "", b)
    if ctx.rng.random() < style.combined_prob:
        trace_desc = f"{desc}_TRACEW" if ctx.site.manufacturer == "SIEMENS" else desc
        if ctx.site.manufacturer == "SIEMENS":
            frames = f0 + f1  # all b0 then all b1000
        else:
            frames = [f for pair in zip(f0, f1, strict=True) for f in pair]  # interleaved
        src = ctx.add("DWI", "b0+trace", trace_desc, proto, frames, [geom], [0.0, b])
    else:
        d0, d1 = (d.format(desc=desc) for d in style.separate_descriptions)
        ctx.add("DWI", "b0", d0, proto, f0, [geom], [0.0])
        src = ctx.add("DWI", "trace", d1, proto, f1, [geom], [b])
    # ADC derived from the noisy images, 1e-6 mm^2/s units, background zeroed
    with np.errstate(divide="ignore", invalid="ignore"):
        adc = np.log(np.maximum(img0, 1e-6) / np.maximum(img1, 1e-6)) / b * 1e6
    adc[img0 < 0.12 * _p995(img0)] = 0.0
    adc_px = np.clip(np.rint(adc), 0, 4095).astype(np.uint16)
    adc_name = "*ep_b0_1000" if ctx.site.manufacturer == "SIEMENS" else ""
    adc_frames = _frames(adc_px, geom, style.adc_image_type, adc_name)
    ctx.add(
        "ADC",
        "adc",
        style.adc_description.format(desc=desc),
        proto,
        adc_frames,
        [geom],
        derived_from=src.series_uid,
    )


def _swi(ctx: _Context, proto: Protocol) -> None:
    geom = ctx.geometry(proto)
    img, _ = _acquire(
        ctx.rng, ctx.volume(proto.params), ctx.subject, geom, proto, snr=proto.snr * ctx.snr_scale
    )
    target = _target(ctx)
    pixels, _ = _to_u16(img, target)
    mag = ctx.add(
        "SWI",
        "magnitude",
        proto.description,
        proto,
        _frames(pixels, geom, proto.image_type, proto.sequence_name),
        [geom],
    )
    style = ctx.site.swi
    if style.phase_description and ctx.rng.random() < 0.7:
        phase = _phase_image(ctx, geom)
        ctx.add(
            "SWI",
            "phase",
            style.phase_description,
            proto,
            _frames(phase, geom, style.phase_image_type, proto.sequence_name),
            [geom],
        )
    if style.minip_description and ctx.rng.random() < 0.7:
        n = max(1, round(8.0 / geom.slice_spacing))
        minip = ndi.minimum_filter1d(pixels, size=n, axis=0)
        ctx.add(
            "SWI",
            "minip",
            style.minip_description,
            proto,
            _frames(minip, geom, style.minip_image_type, proto.sequence_name),
            [geom],
            derived_from=mag.series_uid,
        )


def _phase_image(ctx: _Context, geom: SliceGeometry) -> U16:
    """Filtered phase: smooth background, dipole-like shifts around blood products."""
    grid = np.zeros(ctx.subject.shape, np.float32)
    for lesion in ctx.lesions:
        if lesion.r2p_extra is not None:
            grid[lesion.box] += lesion.r2p_extra * 20.0
    grid = np.asarray(ndi.gaussian_filter(grid, 1.0), dtype=np.float32)
    img = resample_to_slices(grid, ctx.subject.grid_to_world(), geom)
    img += ctx.rng.normal(0, 0.15, size=img.shape).astype(np.float32)
    wrapped = (img + np.pi) % (2 * np.pi) - np.pi
    phase: U16 = np.clip(np.rint(2048 + wrapped * 2047 / np.pi), 0, 4095).astype(np.uint16)
    return phase


def _choose(ctx: _Context, sequence: str) -> Protocol:
    options = ctx.site.protocols[sequence]
    return options[int(ctx.rng.integers(0, len(options)))]


def _study_header(
    rng: np.random.Generator, seed: int, site: Site, contrast: bool, age: int
) -> StudyHeader:
    study_uid = synthetic_uid("study", seed, site.name)
    date = dt.date(2019, 1, 1) + dt.timedelta(days=int(rng.integers(0, 5 * 365)))
    birth = date - dt.timedelta(days=int(age * 365.25 + rng.integers(0, 365)))
    sex = str(rng.choice(["F", "M"]))
    desc = str(rng.choice(site.study_descriptions[1 if contrast else 0]))
    return StudyHeader(
        study_uid=study_uid,
        accession=f"SYN{seed % 10**10:010d}{SITES.index(site.name)}",
        study_id=str(int(rng.integers(1000, 99999))),
        patient_name=f"SYNTHETIC^CASE{seed}{site.name[0].upper()}",
        patient_id=f"SYNPID{seed:010d}{SITES.index(site.name)}",
        birth_date=birth.strftime("%Y%m%d"),
        sex=sex,
        age=age,
        weight_kg=float(round(rng.uniform(50, 110), 1)),
        study_date=date.strftime("%Y%m%d"),
        study_time=f"{int(rng.integers(7, 20)):02d}{int(rng.integers(0, 60)):02d}00",
        study_description=desc,
        body_part=str(rng.choice(site.body_parts)),
        frame_of_reference_uid=synthetic_uid("for", seed, site.name),
        referring="",
    )


def generate_study(
    seed: int,
    site: str | None = None,
    *,
    findings: dict[str, bool] | None = None,
    size: Size = "full",
    sequences: Sequence[str] | None = None,
    restrict_to: Sequence[str] | None = None,
) -> SyntheticStudy:
    """Generate one synthetic brain MRI study (deterministic in ``seed``).

    Args:
        seed: the study's seed; everything (site when not given, findings when not
            given, anatomy, lesions, geometry, noise, UIDs, report) follows from it.
        site: site id (one of :data:`SITES`); drawn from the seed when None.
        findings: force a case: truth per finding id (missing ids are False).
            When None, about 40% of studies are normal and the rest have one or two
            findings.
        size: "full" (realistic matrices and slice counts) or "small" (a quarter of
            the matrix, fewer slices, coarser anatomy grid; for fast tests).
        sequences: acquire exactly these truth classes (ADC always comes with DWI,
            the localizer is always there); the site's habits decide when None.
            Forcing "T1C" gives contrast.
        restrict_to: build only the series of these classes among those the study
            has (the others are not rendered; what is rendered is unchanged, pixel for
            pixel, and the report still describes the whole study). For streaming.

    Returns:
        The study, with DICOM datasets built on first access of each series.
    """
    if size not in ("full", "small"):
        raise ConfigError(f"size {size!r} is not 'full' or 'small'")
    if findings is not None:
        unknown = set(findings) - set(FINDINGS)
        if unknown:
            raise ConfigError(f"findings {sorted(unknown)} are not among {', '.join(FINDINGS)}")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    site_name = site if site is not None else str(rng.choice(SITES))
    profile = get_site(site_name)
    truth = dict.fromkeys(FINDINGS, False)
    if findings is None:
        truth.update(draw_findings(rng))
    else:
        truth.update({k: bool(v) for k, v in findings.items()})

    plans, ventricles = plan_findings(rng, truth)
    subject = make_subject(
        rng,
        grid_mm=1.25 if size == "full" else 2.0,
        ventricle_expansion=ventricles,
        masses=mass_effects(plans),
    )
    lesions = render_lesions(rng, plans, subject)

    # which sequences this study has
    probs = profile.sequence_prob
    wants_contrast = truth["tumour"] or truth["meningioma"] or truth["demyelination"]
    contrast = bool(rng.random() < (0.9 if wants_contrast else probs.get("T1C", 0.5)))
    acquired = ["LOCALIZER"]
    for seq in ("T1", "T2", "FLAIR", "DWI", "SWI"):
        if rng.random() < probs.get(seq, 0.95):
            acquired.append(seq)
    if contrast:
        acquired.append("T1C")
    if sequences is not None:
        unknown_seq = set(sequences) - set(SEQUENCES)
        if unknown_seq:
            raise ConfigError(f"sequences {sorted(unknown_seq)} are not among {SEQUENCES}")
        wanted = set(sequences) | {"LOCALIZER"}
        if "ADC" in wanted:
            wanted.add("DWI")
        order = ("LOCALIZER", "T1", "T2", "FLAIR", "DWI", "SWI", "T1C")
        acquired = [q for q in order if q in wanted]
        contrast = "T1C" in wanted
    header = _study_header(rng, seed, profile, contrast, subject.age)
    ctx = _Context(rng, profile, subject, lesions, header, size)
    ctx.snr_scale = float(rng.uniform(0.75, 1.3))  # coil, patient size, the day
    ctx.clock = dt.datetime.strptime(header.study_date + header.study_time, "%Y%m%d%H%M%S")
    natural = list(acquired)
    if restrict_to is not None:
        keep = set(restrict_to) | ({"DWI"} if "ADC" in restrict_to else set())
        acquired = [q for q in acquired if q in keep]
    for seq in acquired:
        # each acquisition draws from its own stream: leaving series out (restrict_to)
        # does not change the pixels of the others
        ctx.rng = np.random.default_rng(
            np.random.SeedSequence([seed, SITES.index(site_name), SEQUENCES.index(seq)])
        )
        proto = _choose(ctx, seq)
        if seq == "LOCALIZER":
            _localizer(ctx, proto)
        elif seq == "DWI":
            _diffusion(ctx, proto)
        elif seq == "SWI":
            _swi(ctx, proto)
        else:
            _simple_series(ctx, seq, proto)

    masks: dict[str, FindingMask] = {}
    extents: dict[str, FindingMask] = {}
    for lesion in lesions:
        start = np.array([s.start for s in lesion.box], dtype=np.float64)
        shift = np.eye(4)
        shift[:3, 3] = start
        masks[lesion.finding] = FindingMask(lesion.mask.copy(), subject.grid_to_world() @ shift)
        extents[lesion.finding] = FindingMask(lesion.extent(), subject.grid_to_world() @ shift)
    present_classes = [q for q in SEQUENCES if q in natural or (q == "ADC" and "DWI" in natural)]
    report = generate_report(
        [lesion.descriptor for lesion in lesions],
        rng,
        sequences=present_classes,
        contrast=contrast,
        age=subject.age,
    )
    logger.debug("generated study %s (%d series)", header.study_uid, len(ctx.series))
    return SyntheticStudy(
        study_uid=header.study_uid,
        accession=header.accession,
        site=site_name,
        seed=seed,
        findings=truth,
        report=report,
        series=ctx.series,
        masks=masks,
        descriptors={lesion.finding: lesion.descriptor for lesion in lesions},
        header=header,
        pose=subject.pose,
        age=subject.age,
        extents=extents,
    )


def write_study(study: SyntheticStudy, out_dir: Path) -> Path:
    """Write a study as DICOM files: ``out_dir/dicom/<accession>/<NNN_description>/IM_*.dcm``.

    Returns:
        The study folder ``out_dir/dicom/<accession>``.
    """
    folder = out_dir / "dicom" / study.accession
    for series in study.series:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in series.description)
        write_datasets(
            series.datasets, folder / f"{series.series_number:03d}_{safe}", series.implicit_vr
        )
    return folder


__all__ = [
    "SEQUENCES",
    "SITES",
    "FindingMask",
    "SyntheticSeries",
    "SyntheticStudy",
    "draw_findings",
    "generate_study",
    "write_study",
]
