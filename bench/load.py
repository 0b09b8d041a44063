"""Seconds to classify and load every series of a 6-sequence study from disk.

A synthetic study (training.synth, full size) with T1, T1C, T2, FLAIR, DWI (+ADC)
and SWI (+ localizer) is written once uncompressed and once in JPEG 2000
lossless; for each copy the benchmark times

* ``classify``: scan the folder (headers only), classify and select (``select_series``);
* ``load``: load every image series as a volume (the DWI split by b-value into its
  b≈1000 trace, ADC taken from the derived series).

Usage::

    .venv/bin/python bench/load.py [--seed N] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pydicom
from pydicom.uid import JPEG2000Lossless

from pipeline.series import SequenceClass, select_series
from pipeline.series.dwi import diffusion_volumes, study_diffusion
from pipeline.series.headers import B_VALUE_WINDOW
from pipeline.volume import load_series
from training.synth import SyntheticStudy, generate_study, write_study

WANTED = {"T1", "T1C", "T2", "FLAIR", "DWI", "SWI"}


def six_sequence_study(seed: int) -> SyntheticStudy:
    """The first study from ``seed`` on that has all six sequences."""
    for candidate in range(seed, seed + 50):
        study = generate_study(candidate, findings={"tumour": True}, size="full")
        if {s.sequence for s in study.series} >= WANTED:
            return study
    raise SystemExit(f"no six-sequence study among seeds {seed}..{seed + 49}")


def compress_copy(source: Path, target: Path) -> None:
    """Copy a study folder, re-encoding every image in JPEG 2000 lossless."""
    for path in sorted(source.rglob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.compress(JPEG2000Lossless)
        out = target / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(out, enforce_file_format=True)


def classify_and_load(folder: Path) -> dict[str, Any]:
    """Time the classification and the loading of every image series of ``folder``."""
    start = time.perf_counter()
    selection = select_series(folder)
    classified = time.perf_counter()
    chosen_dwi = selection.get(SequenceClass.DWI)
    shapes: dict[str, list[int]] = {}
    dwi = study_diffusion(selection)
    if dwi is not None and chosen_dwi is not None:
        number = chosen_dwi.entry.header.series_number
        shapes[f"{number}:DWI b{dwi.b_value:g} (+ADC)"] = list(dwi.trace.shape)
    for entry in selection.series:
        sequence = entry.classification.sequence
        if sequence in (SequenceClass.LOCALIZER, SequenceClass.OTHER, SequenceClass.ADC):
            continue
        if chosen_dwi is not None and entry.series_uid == chosen_dwi.series_uid:
            continue
        high_b = any(B_VALUE_WINDOW[0] <= b <= B_VALUE_WINDOW[1] for b in entry.header.b_values)
        if sequence is SequenceClass.DWI and high_b:
            other = diffusion_volumes([*entry.sources])
            shapes[f"{entry.header.series_number}:DWI b{other.b_value:g}"] = list(other.trace.shape)
            continue
        volume = load_series(entry.sources)
        shapes[f"{entry.header.series_number}:{sequence.value}"] = list(volume.shape)
    loaded = time.perf_counter()
    return {
        "classify_s": classified - start,
        "load_s": loaded - classified,
        "total_s": loaded - start,
        "series": len(selection.series),
        "volumes": shapes,
    }


def folder_stats(folder: Path) -> tuple[int, float]:
    files = list(folder.rglob("*.dcm"))
    return len(files), sum(f.stat().st_size for f in files) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    study = six_sequence_study(args.seed)
    results: dict[str, Any] = {"seed": study.seed, "site": study.site}
    with tempfile.TemporaryDirectory() as tmp:
        plain = write_study(study, Path(tmp) / "plain")
        j2k = Path(tmp) / "j2k"
        compress_copy(plain, j2k)
        for name, folder in (("uncompressed", plain), ("jpeg2000", j2k)):
            runs = [classify_and_load(folder) for _ in range(args.repeats)]
            files, megabytes = folder_stats(folder)
            results[name] = {
                "files": files,
                "megabytes": round(megabytes, 1),
                "classify_s_median": round(statistics.median(r["classify_s"] for r in runs), 3),
                "load_s_median": round(statistics.median(r["load_s"] for r in runs), 3),
                "total_s_median": round(statistics.median(r["total_s"] for r in runs), 3),
                "series": runs[0]["series"],
                "volumes": runs[0]["volumes"],
            }
    print(f"study seed {results['seed']} site {results['site']}, median of {args.repeats} runs")
    print(f"{'copy':<13}{'files':>6}{'MB':>8}{'classify s':>12}{'load s':>9}{'total s':>9}")
    for name in ("uncompressed", "jpeg2000"):
        r = results[name]
        print(
            f"{name:<13}{r['files']:>6}{r['megabytes']:>8}{r['classify_s_median']:>12}"
            f"{r['load_s_median']:>9}{r['total_s_median']:>9}"
        )
    print("volumes:", json.dumps(results["uncompressed"]["volumes"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
