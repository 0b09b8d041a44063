"""Preprocessing benchmark: MONAI ``Spacing`` against the project's resampling.

Every sequence of one synthetic 6-sequence study (``size="full"``: scanner-sized
matrices) is preprocessed with the shared chain (:func:`pipeline.preprocess.preprocess`)
twice — once with its resampling (:func:`pipeline.preprocess.resample_to_spacing`)
and once with MONAI's ``Spacing`` in its place (the reference, float64) — at 1 mm
(ALIGN's recipe) and at 2 mm (the demo bundle's), on one torch thread. Prints
the median seconds per volume, the ratio to the reference, and the largest
difference of the outputs (z-scored units).

Usage::

    PYTHONPATH=. .venv/bin/python bench/preprocess.py [--repeat 3] [--seed 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import pipeline.preprocess as preprocess_module
from pipeline.model.inputs import sequence_volume
from pipeline.preprocess import PreprocessSpec, preprocess
from pipeline.series import select_series
from pipeline.volume import Volume
from training.synth import generate_study


def monai_spacing(image: torch.Tensor, spec: PreprocessSpec) -> tuple[Any, Any]:
    """The reference: MONAI ``Spacing`` applied eagerly."""
    from monai.transforms.spatial.array import Spacing

    out = Spacing(pixdim=spec.spacing_mm, mode=spec.resample_mode)(image)
    return (
        np.asarray(out.detach().cpu().numpy(), dtype=np.float32),
        np.asarray(getattr(out, "affine", np.eye(4)), dtype=np.float64),
    )


def timed(fn: Callable[[], np.ndarray], repeat: int) -> tuple[float, np.ndarray]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    assert out is not None
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    study = generate_study(args.seed, "siemens_a", size="full")
    selection = select_series([ds for s in study.series for ds in s.datasets])
    volumes: dict[str, Volume] = {}
    for seq in ("T1", "T1C", "T2", "FLAIR", "DWI", "SWI"):
        try:
            volumes[seq] = sequence_volume(selection, seq)[0]
        except LookupError:
            continue
    fast_resample = preprocess_module.resample_to_spacing
    print(
        "| spacing | sequence | source voxels | MONAI Spacing (s) | this project (s) "
        "| ratio | max diff |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    totals = {1.0: [0.0, 0.0], 2.0: [0.0, 0.0]}
    for spacing in (1.0, 2.0):
        spec = PreprocessSpec(spacing_mm=(spacing,) * 3, output_shape=(64, 64, 64))
        for seq, volume in volumes.items():
            preprocess_module.resample_to_spacing = monai_spacing  # type: ignore[assignment]
            ref_s, ref = timed(lambda v=volume, sp=spec: preprocess(v, sp), args.repeat)
            preprocess_module.resample_to_spacing = fast_resample
            new_s, new = timed(lambda v=volume, sp=spec: preprocess(v, sp), args.repeat)
            totals[spacing][0] += ref_s
            totals[spacing][1] += new_s
            print(
                f"| {spacing:g} mm | {seq} | {volume.array.size:,} | {ref_s:.3f} | {new_s:.3f} "
                f"| {new_s / ref_s:.2f} | {np.abs(ref - new).max():.2e} |"
            )
        ref_s, new_s = totals[spacing]
        print(
            f"| {spacing:g} mm | **all {len(volumes)}** | | {ref_s:.3f} | {new_s:.3f} "
            f"| {new_s / ref_s:.2f} | |"
        )


if __name__ == "__main__":
    main()
