"""Diffusion series: split by b-value, pick the b≈1000 trace, get or compute ADC.

A clinical DWI series may hold several b-values (GE and Philips keep b0 and
b1000, and sometimes the directional images, in one series; Siemens writes
the trace-weighted images of each b-value and the ADC map as separate series).
The b-value of each image comes from, in order: DiffusionBValue (0018,9087)
or the MR Diffusion functional group of Enhanced MR (C.8.13.5.9), the vendors'
private elements (GE (0043,1039), Siemens (0019,100C), Philips (2001,1003)),
and when nothing tells, the b-values written in the description assigned by
acquisition order at each slice position (b0 first).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dicom_node.errors import SeriesError
from pipeline.series.classes import SequenceClass
from pipeline.series.headers import (
    B_VALUE_WINDOW,
    TARGET_B_VALUE,
    Frame,
    frame_b_value,
    vendor_of,
)
from pipeline.series.select import StudySelection
from pipeline.volume import SeriesInput, Volume, expand_sources, frame_position, load_series

logger = logging.getLogger(__name__)

#: b-values up to this (s/mm²) count as "b0".
LOW_B_VALUE = 50.0
#: Nominal high b-value assumed when a series has two images per position and no b-value anywhere.
ASSUMED_HIGH_B_VALUE = 1000.0

_DESCRIPTION_B = re.compile(r"(?<![a-z0-9])b ?=? ?(\d{1,4})(?![0-9])|(?<![0-9.])(\d{3,4}) ?b\b")


@dataclass(frozen=True)
class BValueSplit:
    """The frames of a diffusion series grouped by b-value.

    Attributes:
        groups: b-value (s/mm²) -> frames with that b-value.
        source: where the b-values came from (``"tags"``, ``"description"``,
            ``"assumed"``).
    """

    groups: dict[float, list[Frame]]
    source: str


def description_b_values(text: str) -> list[float]:
    """b-values named in a description (``"DWI b0 b1000"``, ``"b=0,1000"``, ``"1000b"``)."""
    lowered = text.lower().replace("_", " ")
    values: list[float] = []
    for match in _DESCRIPTION_B.finditer(lowered):
        number = match.group(1) or match.group(2)
        values.append(float(number))
    # "b0 1000" / "b=0,1000": trailing numbers after a b-value list
    tail = re.search(r"b ?=? ?\d{1,4}((?:\s*[,/ ]\s*\d{2,4})+)", lowered)
    if tail:
        values.extend(float(v) for v in re.findall(r"\d{2,4}", tail.group(1)))
    return sorted(set(values))


def split_b_values(datasets: Sequence[SeriesInput]) -> BValueSplit:
    """Group the frames of a diffusion series by b-value.

    Raises:
        SeriesError: no b-value can be assigned (several images per position
            with no tag and no b-values in the description).
    """
    frames = expand_sources(datasets)
    if not frames:
        raise SeriesError("an empty diffusion series cannot be split by b-value")
    vendor = vendor_of(str(frames[0].dataset.get("Manufacturer", "")))
    tagged = [frame_b_value(f, vendor) for f in frames]
    by_position: dict[tuple[float, float, float], list[Frame]] = defaultdict(list)
    for frame in frames:
        by_position[frame_position(frame)].append(frame)
    per_position = max(len(v) for v in by_position.values())

    if all(b is not None for b in tagged):
        groups: dict[float, list[Frame]] = defaultdict(list)
        for frame, b in zip(frames, tagged, strict=True):
            groups[round(float(b or 0.0), 0)].append(frame)
        return BValueSplit(dict(groups), "tags")
    if any(b is not None for b in tagged):
        # Canon / Toshiba write DiffusionBValue only for b > 0 (dcm2niix notes): untagged = b0
        groups = defaultdict(list)
        for frame, b in zip(frames, tagged, strict=True):
            groups[round(float(b), 0) if b is not None else 0.0].append(frame)
        return BValueSplit(dict(groups), "tags")

    first = frames[0].dataset
    text = f"{first.get('SeriesDescription', '')} {first.get('ProtocolName', '')}"
    named = description_b_values(text)
    if per_position == 1:
        b = named[-1] if named else ASSUMED_HIGH_B_VALUE
        return BValueSplit({b: frames}, "description" if named else "assumed")
    if len(named) == per_position:
        values, source = named, "description"
    elif per_position == 2:
        values, source = [0.0, named[-1] if named else ASSUMED_HIGH_B_VALUE], "assumed"
        if named:
            source = "description"
    else:
        raise SeriesError(
            f"diffusion series has {per_position} images per slice position and no "
            f"DiffusionBValue / private b-value; description {text.strip()!r} names {named}"
        )
    groups = defaultdict(list)
    for stack in by_position.values():
        ordered = sorted(stack, key=_acquisition_order)
        for frame, b in zip(ordered, values, strict=False):
            groups[b].append(frame)
    logger.debug("b-values %s assigned by order at each slice position (%s)", values, source)
    return BValueSplit(dict(groups), source)


def _acquisition_order(frame: Frame) -> tuple[float, int, int]:
    ds = frame.dataset
    number = int(ds.get("InstanceNumber", 0) or 0)
    time = str(ds.get("AcquisitionTime", "") or "")
    try:
        seconds = float(time) if time else 0.0
    except ValueError:
        seconds = 0.0
    return (seconds, number, frame.index or 0)


def pick_high_b(split: BValueSplit) -> float:
    """The b-value closest to 1000 s/mm² inside the accepted window.

    Raises:
        SeriesError: when no b-value lies in the window.
    """
    candidates = [b for b in split.groups if B_VALUE_WINDOW[0] <= b <= B_VALUE_WINDOW[1]]
    if not candidates:
        raise SeriesError(
            f"no b-value between {B_VALUE_WINDOW[0]:g} and {B_VALUE_WINDOW[1]:g} s/mm² "
            f"in the series (found {sorted(split.groups)})"
        )
    return min(candidates, key=lambda b: (abs(b - TARGET_B_VALUE), b))


def _is_trace(frame: Frame) -> bool:
    image_type = [str(v).upper() for v in (frame.dataset.get("ImageType") or [])]
    directionality = str(frame.attribute("DiffusionDirectionality") or "").upper()
    return "TRACEW" in image_type or "TRACE" in image_type or directionality == "ISOTROPIC"


def trace_volume(frames: Sequence[Frame]) -> Volume:
    """The trace-weighted volume of one b-value.

    When several images share a slice position (directional images), the
    images marked trace / isotropic are used if present, otherwise the
    geometric mean of the directions (the trace-weighted image) is computed.
    """
    by_position: dict[tuple[float, float, float], list[Frame]] = defaultdict(list)
    for frame in frames:
        by_position[frame_position(frame)].append(frame)
    if max(len(v) for v in by_position.values()) == 1:
        return load_series(frames)
    traces = [f for f in frames if _is_trace(f)]
    if traces and len({frame_position(f) for f in traces}) == len(traces):
        return load_series(traces)
    n_dirs = min(len(v) for v in by_position.values())
    volumes = []
    for d in range(n_dirs):
        volumes.append(
            load_series([sorted(v, key=_acquisition_order)[d] for v in by_position.values()])
        )
    stack = np.stack([np.clip(v.array, 1e-3, None) for v in volumes])
    mean = np.exp(np.mean(np.log(stack), axis=0)).astype(np.float32)
    ref = volumes[0]
    return Volume(mean, ref.spacing, ref.origin, ref.direction, ref.series_uid, ref.study_uid)


def compute_adc(b0: Volume, high: Volume, b_value: float, floor: float = 1.0) -> Volume:
    """ADC = ln(S0 / Sb) / b, in 10⁻⁶ mm²/s (the scale scanners store), 0 where S0 < floor."""
    if b0.shape != high.shape:
        raise SeriesError(f"b0 shape {b0.shape} differs from b{b_value:g} shape {high.shape}")
    if b_value <= 0:
        raise SeriesError(f"b-value {b_value} must be positive to compute ADC")
    s0 = b0.array.astype(np.float64)
    sb = np.clip(high.array.astype(np.float64), 1e-3, None)
    valid = s0 >= floor
    adc = np.zeros_like(s0)
    adc[valid] = np.log(s0[valid] / sb[valid]) / b_value * 1e6
    adc32 = np.clip(adc, 0.0, 5000.0).astype(np.float32)
    return Volume(adc32, high.spacing, high.origin, high.direction, high.series_uid, high.study_uid)


@dataclass(frozen=True)
class DiffusionVolumes:
    """What the models take from a diffusion study.

    Attributes:
        trace: the trace-weighted volume at ``b_value``.
        b_value: the chosen b-value (s/mm²).
        b0: the b0 volume when the series holds one.
        adc: the ADC map (from a derived ADC series, or computed from b0 / trace).
        explanation: how each part was obtained.
    """

    trace: Volume
    b_value: float
    b0: Volume | None
    adc: Volume | None
    explanation: str


def diffusion_volumes(
    dwi: Sequence[SeriesInput],
    adc_map: Sequence[SeriesInput] | None = None,
    b0_series: Sequence[SeriesInput] | None = None,
) -> DiffusionVolumes:
    """Split a DWI series, pick the b≈1000 trace, and take or compute the ADC map.

    Args:
        dwi: the files, datasets (or frames) of the diffusion series.
        adc_map: the files or datasets of a scanner-derived ADC series, when one exists.
        b0_series: a separate b0 series of the same acquisition (Philips and some
            Siemens protocols store it apart), used when ``dwi`` holds no b0.
    """
    split = split_b_values(dwi)
    b_value = pick_high_b(split)
    trace = trace_volume(split.groups[b_value])
    notes = [f"b={b_value:g} trace from b-values {sorted(split.groups)} ({split.source})"]
    low = [b for b in split.groups if b <= LOW_B_VALUE]
    b0 = trace_volume(split.groups[min(low)]) if low else None
    if b0 is None and b0_series:
        other = split_b_values(b0_series)
        other_low = [b for b in other.groups if b <= LOW_B_VALUE]
        if other_low:
            candidate = trace_volume(other.groups[min(other_low)])
            if candidate.shape == trace.shape:
                b0, low = candidate, [min(other_low)]
                notes.append(
                    f"b={min(other_low):g} from the separate series {candidate.series_uid}"
                )
    adc: Volume | None = None
    if adc_map:
        adc = load_series(adc_map)
        notes.append("ADC from the scanner's derived map")
    elif b0 is not None:
        adc = compute_adc(b0, trace, b_value - min(low))
        notes.append(f"ADC computed from b={min(low):g} and b={b_value:g}")
    else:
        notes.append("no ADC: no derived map and no b0 images")
    return DiffusionVolumes(trace, b_value, b0, adc, "; ".join(notes))


def study_diffusion(selection: StudySelection) -> DiffusionVolumes | None:
    """The diffusion volumes of a study: the chosen DWI series, its ADC map, and a
    separate b0 series of the study when the chosen one has no b0.

    Returns ``None`` when the study has no DWI series with a b≈1000.
    """
    chosen = selection.get(SequenceClass.DWI)
    if chosen is None:
        return None
    header = chosen.entry.header
    if header.b_values and not any(
        B_VALUE_WINDOW[0] <= b <= B_VALUE_WINDOW[1] for b in header.b_values
    ):
        return None
    adc = selection.get(SequenceClass.ADC)
    b0_sources: list[SeriesInput] | None = None
    if header.b_values and min(header.b_values) > LOW_B_VALUE:
        siblings = [
            e
            for e in selection.series
            if e.classification.sequence is SequenceClass.DWI
            and e.series_uid != chosen.series_uid
            and e.header.b_values
            and max(e.header.b_values) <= LOW_B_VALUE
            and e.header.plane == header.plane
            and (e.header.rows, e.header.columns) == (header.rows, header.columns)
        ]
        if siblings:
            nearest = min(
                siblings,
                key=lambda e: abs((e.header.series_number or 0) - (header.series_number or 0)),
            )
            b0_sources = [*nearest.sources]
    adc_sources: list[SeriesInput] | None = [*adc.files] if adc is not None else None
    return diffusion_volumes([*chosen.files], adc_map=adc_sources, b0_series=b0_sources)
