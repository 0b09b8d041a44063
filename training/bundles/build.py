"""From trained encoders and a prepared cache to a calibrated model bundle.

Steps: load the report encoder and the best image encoders; embed the query bank
and the validation studies; choose the scoring/fusion and the thresholds on
validation (:mod:`.calibrate`); write the bundle (:mod:`.writer`) with the
validation metrics and a summary of the training data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dicom_node.errors import TrainingError
from pipeline.model.manifest import Manifest, NetworkSpec, TrainingDataSummary
from pipeline.model.operating_points import resolve_operating_points
from pipeline.model.queries import QueryBank, default_query_bank
from pipeline.model.scoring import EmbeddedQueries, Fusion
from pipeline.model.text_encoder import ReportEncoder
from training.bundles.calibrate import (
    ROBUST_FUSIONS,
    SequenceRule,
    adopt_set_calibration,
    calibrate_thresholds,
    check_heatmap_overrides,
    fit_calibration,
    mean_auc,
    override_heatmap_sequences,
    resolve_heatmap_sources,
    select_finding_sequences,
    select_heatmap_sequences,
    select_scoring,
    spread_temperature,
)
from training.bundles.writer import training_data_hash, write_bundle
from training.data.cache import SPLITS, StudyCache, read_cache
from training.evaluation.scoring import LabelSource, embed_studies, score_studies, study_labels
from training.image.train import load_sequence_encoder
from training.text.train import TOKENIZER_FILE, load_report_encoder, read_text_config

logger = logging.getLogger(__name__)


@dataclass
class BuildResult:
    """The written bundle and what was chosen on validation."""

    path: Path
    manifest: Manifest
    candidates: list[dict[str, Any]]


def embed_bank(encoder: ReportEncoder, bank: QueryBank) -> EmbeddedQueries:
    """Unit embeddings of a query bank's sentences."""
    return EmbeddedQueries(
        normal=encoder.encode(bank.normal_references),
        findings={f.id: encoder.encode(f.sentences) for f in bank.findings},
        bank_ids=tuple(bank.finding_ids),
    )


def unit_encoder(nets: dict[str, nn.Module]) -> Any:
    """An ``encode(sequence, batch)`` function returning unit embeddings."""

    @torch.no_grad()
    def encode(seq: str, batch: Tensor) -> Tensor:
        return torch.nn.functional.normalize(nets[seq](batch.float()).float(), dim=-1)

    return encode


def summarise_training_data(cache: StudyCache, description: str = "") -> TrainingDataSummary:
    """Counts, sites and a hash of the cache's study keys and splits."""
    return TrainingDataSummary(
        sha256=training_data_hash((s.key, s.split) for s in cache.studies),
        studies={split: len(cache.split(split)) for split in SPLITS},
        sites={split: cache.sites(split) for split in SPLITS},
        description=description,
    )


def build_bundle(
    cache_dir: Path,
    text_dir: Path,
    image_dir: Path,
    out_dir: Path,
    *,
    name: str = "neurotriage-demo",
    version: str = "0.1.0",
    bank: QueryBank | None = None,
    operating_point: str = "sens90",
    labels: LabelSource = "truth",
    sequences: list[str] | None = None,
    description: str = "",
    fusions: Sequence[Fusion] = ROBUST_FUSIONS,
    heatmap_sequences: Mapping[str, str] | None = None,
    heatmap_sources: Mapping[str, Sequence[str]] | None = None,
    sequence_rule: SequenceRule = "gain",
) -> BuildResult:
    """Calibrate on the validation split and write the bundle to ``out_dir``.

    ``heatmap_sequences`` (finding id -> sequence) overrides where those findings are
    drawn (:func:`~training.bundles.calibrate.override_heatmap_sequences`); the others
    are drawn on the sequence that ranks them best on validation. ``heatmap_sources``
    (finding id -> sequences, or ``["all"]``) makes those findings' maps the mean of
    several sequences' maps (``ScoringSpec.heatmap_sources``). ``operating_point``
    is the point the present/absent call uses: one name for every finding, or a
    default with overrides, e.g. ``"youden,abnormal=sens90"``
    (:func:`pipeline.model.operating_points.resolve_operating_points`).
    ``sequence_rule`` is how each finding's sequences are chosen on validation
    (:func:`~training.bundles.calibrate.select_finding_sequences`).
    """
    cache = read_cache(cache_dir)
    text = load_report_encoder(text_dir)
    meta = read_text_config(text_dir)
    chosen = sequences or [
        p.name for p in sorted(image_dir.iterdir()) if (p / "network.json").is_file()
    ]
    if not chosen:
        raise TrainingError(f"no trained sequence encoder under {image_dir}")
    encoders: dict[str, tuple[nn.Module, NetworkSpec]] = {}
    for seq in chosen:
        net, net_spec = load_sequence_encoder(image_dir / seq)
        encoders[seq] = (net, NetworkSpec(**net_spec))
    bank = bank or default_query_bank()
    points = resolve_operating_points(operating_point, bank.finding_ids)
    check_heatmap_overrides(heatmap_sequences or {}, bank.finding_ids, list(encoders))
    sources = resolve_heatmap_sources(heatmap_sources or {}, bank.finding_ids, list(encoders))
    queries = embed_bank(text, bank)
    val = cache.split("val")
    if not val:
        raise TrainingError(f"cache {cache_dir} has no validation studies to calibrate on")
    nets = {seq: net for seq, (net, _) in encoders.items()}
    embeddings = embed_studies(unit_encoder(nets), cache, val, list(nets))
    val_labels = study_labels(val, bank.finding_ids, labels)
    spec, candidates = select_scoring(embeddings, val_labels, queries, fusions=fusions)
    spec = select_finding_sequences(embeddings, val_labels, queries, spec, rule=sequence_rule)
    if spec.contrast == "normal" and not spec.finding_contrast:
        # T only spreads the scores here; rankings are unchanged
        raw = score_studies(embeddings, queries, spec)
        spec = spec.model_copy(update={"temperature": spread_temperature(raw, spec.temperature)})
    drawn_on = override_heatmap_sequences(
        select_heatmap_sequences(embeddings, val_labels, queries, spec),
        heatmap_sequences or {},
        bank.finding_ids,
        list(encoders),
    )
    spec = spec.model_copy(update={"heatmap_sequence": drawn_on, "heatmap_sources": sources})
    spec = spec.model_copy(
        update={
            "calibration": fit_calibration(score_studies(embeddings, queries, spec), val_labels)
        }
    )
    spec = adopt_set_calibration(embeddings, val_labels, queries, spec)
    val_scores = score_studies(embeddings, queries, spec)
    thresholds = calibrate_thresholds(val_scores, val_labels)
    calibrated = bank.with_thresholds(thresholds, operating_point=points)
    metrics = {
        "validation": {
            "n_studies": len(val),
            "label_source": labels,
            "mean_auc": mean_auc(val_scores, val_labels),
            "scoring_candidates": candidates,
        }
    }
    manifest = write_bundle(
        out_dir,
        name=name,
        version=version,
        text_model=text.model,
        text_config=meta["config"],
        tokenizer_file=text_dir / TOKENIZER_FILE,
        max_length=int(meta["max_length"]),
        image_encoders=encoders,
        preprocessing=cache.preprocessing,
        queries=calibrated,
        scoring=spec,
        training_data=summarise_training_data(cache, description),
        metrics=metrics,
    )
    logger.info(
        "bundle %s %s written to %s (device UID %s)", name, version, out_dir, manifest.device_uid
    )
    return BuildResult(path=out_dir, manifest=manifest, candidates=candidates)
