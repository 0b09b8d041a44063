"""A folder of synthetic studies: DICOM, reports, labels and masks.

Layout written by :func:`generate_dataset`::

    DIR/dicom/<accession>/<NNN_description>/IM_00001.dcm ...
    DIR/reports.jsonl   one JSON object per study: accession, study_uid, site, text,
                        findings_section, impression_section
    DIR/labels.csv      study_uid, accession, site, normal, abnormal, <finding>... (0/1)
    DIR/masks/<accession>/<finding>.nii.gz   truth masks (NIfTI, RAS affine as NIfTI
                        requires; SimpleITK reads them back in patient LPS space)

Study ``i`` is generated from a seed derived from (seed, i) only, and the index
files are written in study order, so the output is identical whatever the
number of workers.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from dicom_node.errors import ConfigError
from training.synth.findings import FINDINGS
from training.synth.sites import SITES, get_site
from training.synth.study import FindingMask, Size, SyntheticStudy, generate_study, write_study

logger = logging.getLogger(__name__)

LABEL_COLUMNS: tuple[str, ...] = ("study_uid", "accession", "site", "normal", "abnormal", *FINDINGS)


def single_threaded() -> None:
    """Worker initialiser: one thread per process (SimpleITK), the pool provides parallelism."""
    import SimpleITK as sitk

    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(1)


def study_seed(seed: int, index: int) -> int:
    """Seed of study ``index`` of a dataset generated with ``seed`` (stable, 31 bits)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0] & 0x7FFFFFFF)


def study_site(sites: Sequence[str], index: int) -> str:
    """Site of study ``index``: the sites in turn."""
    return sites[index % len(sites)]


def write_mask(mask: FindingMask, path: Path) -> None:
    """Write a truth mask as NIfTI (uint8), converting the LPS affine to NIfTI's RAS."""
    import nibabel as nib

    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ mask.affine_lps
    img = nib.Nifti1Image(mask.array.astype(np.uint8), ras)
    img.set_qform(ras, code=1)
    img.set_sform(ras, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))


def label_row(study: SyntheticStudy) -> dict[str, object]:
    """The labels.csv row of a study (truth from the generator, not from the text)."""
    row: dict[str, object] = {
        "study_uid": study.study_uid,
        "accession": study.accession,
        "site": study.site,
        "normal": int(study.normal),
        "abnormal": int(not study.normal),
    }
    for f in FINDINGS:
        row[f] = int(study.findings[f])
    return row


def report_row(study: SyntheticStudy) -> dict[str, object]:
    """The reports.jsonl object of a study."""
    return {
        "accession": study.accession,
        "study_uid": study.study_uid,
        "site": study.site,
        "text": study.report.text,
        "findings_section": study.report.findings_section,
        "impression_section": study.report.impression_section,
    }


def _one(args: tuple[Path, int, str, Size]) -> tuple[dict[str, object], dict[str, object]]:
    out, seed, site, size = args
    study = generate_study(seed, site, size=size)
    write_study(study, out)
    for finding, mask in study.masks.items():
        write_mask(mask, out / "masks" / study.accession / f"{finding}.nii.gz")
    return label_row(study), report_row(study)


def generate_dataset(
    out: Path,
    n_studies: int,
    seed: int,
    sites: Sequence[str] | None,
    workers: int,
    *,
    size: Size = "full",
) -> None:
    """Generate ``n_studies`` studies into ``out`` (see the module docstring for the layout).

    Args:
        out: output folder (created).
        n_studies: number of studies.
        seed: dataset seed; study i uses :func:`study_seed` (seed, i).
        sites: site ids to cycle through (all sites when None or empty).
        workers: processes (1 = in this process). The output does not depend on it.
        size: "full" or "small" studies.
    """
    if n_studies < 0:
        raise ConfigError(f"n_studies {n_studies} is negative")
    chosen = list(sites) if sites else list(SITES)
    for s in chosen:
        get_site(s)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(out, study_seed(seed, i), study_site(chosen, i), size) for i in range(n_studies)]
    if workers <= 1:
        results = [_one(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=single_threaded) as pool:
            results = list(pool.map(_one, jobs, chunksize=1))
    with (out / "labels.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(LABEL_COLUMNS))
        writer.writeheader()
        for labels, _ in results:
            writer.writerow(labels)
    with (out / "reports.jsonl").open("w") as fh:
        for _, report in results:
            fh.write(json.dumps(report, sort_keys=True) + "\n")
    logger.info("generated %d synthetic studies in %s", n_studies, out)
