"""Evaluating a bundle on a split (or sites) of a prepared cache: the ``evaluate`` command."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicom_node.errors import TrainingError
from pipeline.model.bundle import load_bundle
from training.bundles.writer import write_manifest
from training.data.cache import read_cache
from training.evaluation.report import ScoredStudies, evaluate_scores, write_report
from training.evaluation.scoring import LabelSource, embed_studies, score_studies, study_labels
from training.labels.agreement import FindingAgreement, agreement

logger = logging.getLogger(__name__)


@dataclass
class EvaluationResult:
    """The report, the files written and (when truth exists) the label extractor's agreement."""

    report: dict[str, Any]
    files: list[Path]
    label_agreement: list[FindingAgreement] | None


def evaluate_bundle(
    bundle_dir: Path,
    cache_dir: Path,
    out_dir: Path,
    *,
    split: str = "test",
    sites: Sequence[str] | None = None,
    labels: LabelSource = "truth",
    k: int = 15,
    n_boot: int = 1000,
    store_in_bundle: bool = False,
    title: str | None = None,
) -> EvaluationResult:
    """Score the studies of ``split`` (restricted to ``sites``) and write the reports."""
    bundle = load_bundle(bundle_dir)
    cache = read_cache(cache_dir)
    cache.require_preprocessing(
        bundle.manifest.preprocessing, f"bundle {bundle.name} {bundle.version}"
    )
    studies = cache.split(split)
    if sites:
        studies = [s for s in studies if s.site in set(sites)]
    studies = [s for s in studies if set(s.sequences) & set(bundle.sequences)]
    if not studies:
        raise TrainingError(f"no {split} studies (sites {sites}) with a sequence of the bundle")
    embeddings = embed_studies(bundle.encode_image, cache, studies, bundle.sequences)
    scores = score_studies(embeddings, bundle.queries, bundle.manifest.scoring)
    finding_ids = bundle.manifest.queries.finding_ids
    y = study_labels(studies, finding_ids, labels)
    scored = ScoredStudies(
        keys=[s.key for s in studies], sites=[s.site for s in studies], scores=scores, labels=y
    )
    thresholds = {f.id: dict(f.thresholds) for f in bundle.manifest.queries.findings}
    report = evaluate_scores(scored, thresholds, k=k, n_boot=n_boot)
    report |= {
        "bundle": {"name": bundle.name, "version": bundle.version, "device_uid": bundle.device_uid},
        "split": split,
        "label_source": labels,
        "scoring": bundle.manifest.scoring.model_dump(),
    }
    label_agreement = None
    if all(s.labels for s in studies):
        truth = study_labels(studies, finding_ids, "truth")
        extracted = study_labels(studies, finding_ids, "reports")
        n = len(studies)
        label_agreement = agreement(
            [{f: int(extracted[f][i]) for f in finding_ids} for i in range(n)],
            [{f: int(truth[f][i]) for f in finding_ids} for i in range(n)],
            finding_ids,
        )
        report["label_extractor_agreement"] = [a.__dict__ for a in label_agreement]
    files = write_report(
        report, scored, out_dir, title or f"{bundle.name} {bundle.version}: {split}"
    )
    if store_in_bundle:
        summary = {
            fid: {
                "auc": e["overall"]["auc"],
                "low": e["overall"]["low"],
                "high": e["overall"]["high"],
            }
            for fid, e in report["findings"].items()
        }
        manifest = bundle.manifest.model_copy(
            update={
                "metrics": bundle.manifest.metrics
                | {f"{split}{'_' + '_'.join(sites) if sites else ''}": summary}
            }
        )
        write_manifest(bundle_dir, manifest)
    return EvaluationResult(report=report, files=files, label_agreement=label_agreement)
