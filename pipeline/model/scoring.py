"""Zero-shot scoring: image embeddings against finding queries and normal references.

For an L2-normalised image embedding ``v``, a finding with paraphrase embeddings
``p_1..p_k`` and normal references ``n_1..n_m`` (all unit vectors)::

    s_pos = agg_pos(cos(v, p_i))        # "mean" (default) or "max" over paraphrases
    s_neg = agg_neg(cos(v, n_j))        # "mean" or "max" over normal references
    score = sigmoid((s_pos - s_neg) / temperature)

i.e. a softmax over {finding, normal} of the similarities at ``temperature``
(``contrast="normal"``); it is monotone in the difference of cosine
similarities, so AUC does not depend on the temperature, which only spreads
the scores over (0, 1).

With ``contrast="all"`` a finding competes with the normal references *and*
every other finding of the bank: its score is its share of a softmax over
{normal, finding_1, ..., finding_n}; the triage finding (``abnormal``) scores
``1 - P(normal)``. A report or image of a tumour then no longer scores high
for haemorrhage merely because it is not normal: on synthetic reports this
raised the text-only mean AUC of six findings from 0.885 to 0.965 with one
encoder (``training.evaluation.text_ceiling``) but lowered it with another, so
the contrast is chosen on validation. User-added queries join the softmax of
the bank for their own score only.

Per-sequence embeddings of one study are fused by one of
``mean_embedding`` (mean of the unit vectors, renormalised, then scored),
``mean_score`` or ``max_score`` (scores per sequence, then averaged / maximised);
``finding_sequences`` may restrict a finding to the sequences that show it;
``calibration`` (one Platt map per finding, or per finding and set of sequences
used: ``set_calibration``) turns exam scores into probabilities.
The aggregation and fusion are chosen on the validation split by
:func:`training.bundles.calibrate.select_scoring` and stored in the bundle; the
temperature is then set to the spread of the validation similarity differences
(:func:`training.bundles.calibrate.spread_temperature`) so that scores use (0, 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import Tensor

from dicom_node.errors import BundleError
from pipeline.model.queries import TRIAGE_FINDING

Aggregation = Literal["mean", "max"]
Fusion = Literal["mean_embedding", "mean_score", "max_score"]
Contrast = Literal["normal", "all"]
AGGREGATIONS: tuple[Aggregation, ...] = ("mean", "max")
FUSIONS: tuple[Fusion, ...] = ("mean_embedding", "mean_score", "max_score")
CONTRASTS: tuple[Contrast, ...] = ("normal", "all")


class ScoringSpec(BaseModel):
    """How similarities become scores and how sequences are fused (stored in the bundle)."""

    model_config = ConfigDict(extra="forbid")

    positive_aggregation: Aggregation = "mean"
    normal_aggregation: Aggregation = "mean"
    temperature: float = Field(default=0.05, gt=0.0)
    fusion: Fusion = "mean_embedding"
    contrast: Contrast = "normal"
    finding_contrast: dict[str, Contrast] = Field(default_factory=dict)
    """Per-finding overrides of ``contrast`` (finding id -> contrast), chosen on
    validation: e.g. ``abnormal`` is often best against every finding ("all") while
    a finding is best against the normal references only."""
    finding_sequences: dict[str, list[str]] = Field(default_factory=dict)
    """Finding id -> the sequences fused for its exam score, chosen on validation
    (e.g. ``acute_infarct`` -> ``["DWI"]`` when T2 and FLAIR only add noise to it).
    A study that has none of them falls back to every sequence it has; findings
    not listed use every sequence."""
    calibration: dict[str, tuple[float, float]] = Field(default_factory=dict)
    """Finding id -> (slope, intercept) of a logistic map fitted on validation
    (Platt scaling): the exam score becomes ``sigmoid(slope * logit(raw) + intercept)``,
    an estimate of the probability of the finding in a population like the
    validation split. Monotone (slope > 0), so rankings and AUCs do not change;
    user-added queries have no labels and keep their raw scores."""
    set_calibration: dict[str, dict[str, tuple[float, float]]] = Field(default_factory=dict)
    """Finding id -> {sequence set ("DWI+T1C+T2", see :func:`sequence_set_key`) ->
    (slope, intercept)}: Platt maps fitted on the validation studies whose exam score
    for the finding came from that set of sequences. Where a sequence that shows a
    finding is often missing (post-contrast T1 in half of the studies), the scores
    of studies with and without it are distributed differently; one map per set puts
    both on the same probability scale. A set without its own map uses
    ``calibration``."""
    heatmap_sequence: dict[str, str] = Field(default_factory=dict)
    """Finding id -> the sequence whose own scores separated that finding best on
    validation: its heatmap is drawn there when the study has it (else on the
    sequence that scored the finding highest)."""
    heatmap_sources: dict[str, list[str]] = Field(default_factory=dict)
    """Finding id -> the sequences whose saliency maps are averaged for its heatmap,
    each resampled onto the sequence it is drawn on (those the study has; the drawn
    sequence always counts). Findings not listed are drawn from the drawn sequence's
    map alone. Where each sequence's evidence peaks beside the lesion (a tumour's
    oedema on FLAIR, its enhancing rim on T1+C), the mean peaks where they agree:
    chosen on the pointing game (``bench/heatmaps.py``), not on validation AUC."""

    @field_validator("calibration")
    @classmethod
    def _increasing(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for fid, params in value.items():
            _check_increasing(fid, params)
        return value

    @field_validator("set_calibration")
    @classmethod
    def _increasing_per_set(
        cls, value: dict[str, dict[str, tuple[float, float]]]
    ) -> dict[str, dict[str, tuple[float, float]]]:
        for fid, per_set in value.items():
            for key, params in per_set.items():
                _check_increasing(f"{fid} on {key}", params)
        return value

    def contrast_of(self, finding_id: str) -> Contrast:
        """The contrast used for ``finding_id``."""
        return self.finding_contrast.get(finding_id, self.contrast)

    def sequences_for(self, finding_id: str, available: Iterable[str]) -> tuple[str, ...]:
        """The sequences of ``available`` fused for ``finding_id`` (sorted)."""
        have = sorted(set(available))
        wanted = self.finding_sequences.get(finding_id)
        if not wanted:
            return tuple(have)
        chosen = tuple(seq for seq in have if seq in wanted)
        return chosen or tuple(have)

    def calibration_for(self, finding_id: str, used: Iterable[str]) -> tuple[float, float] | None:
        """The Platt map of ``finding_id`` for an exam score fused from ``used``."""
        per_set = self.set_calibration.get(finding_id, {})
        return per_set.get(sequence_set_key(used), self.calibration.get(finding_id))


def sequence_set_key(sequences: Iterable[str]) -> str:
    """``"DWI+T2"``: the sorted sequence names joined by ``+``."""
    return "+".join(sorted(set(sequences)))


def _check_increasing(name: str, params: tuple[float, float]) -> None:
    slope, intercept = params
    if not (slope > 0 and math.isfinite(slope) and math.isfinite(intercept)):
        raise ValueError(
            f"calibration of {name!r} must have a finite positive slope and a finite "
            f"intercept, got ({slope}, {intercept})"
        )


@dataclass(frozen=True)
class EmbeddedQueries:
    """Unit-vector embeddings of a query bank: normal references and each finding's paraphrases."""

    normal: Tensor
    """(M, D)"""
    findings: dict[str, Tensor]
    """finding id -> (K, D)"""
    bank_ids: tuple[str, ...] | None = None
    """Findings of the bank (competitors under ``contrast="all"``); None: every finding."""


def _aggregate(similarities: Tensor, how: Aggregation) -> Tensor:
    if how == "mean":
        return similarities.mean(dim=-1)
    if how == "max":
        return similarities.max(dim=-1).values
    raise BundleError(f"aggregation {how!r} is not one of {AGGREGATIONS}")


def finding_logits(
    image_embeddings: Tensor, queries: EmbeddedQueries, spec: ScoringSpec
) -> dict[str, Tensor]:
    """Log-odds of each finding: finding id -> (B,); the score is their sigmoid.

    Differentiable (float64) — the quantity a saliency method should explain:

    * ``contrast="normal"``: ``(s_pos - s_neg) / T``;
    * ``contrast="all"``: ``s_f / T - logsumexp`` of the other logits of the bank's
      softmax {normal, findings}; for ``abnormal``, ``logsumexp(findings) - s_neg / T``;
      for a user-added query, ``s / T - logsumexp(bank)``.
    """
    if image_embeddings.ndim != 2:
        raise BundleError(
            f"image embeddings must be (B, D); got shape {tuple(image_embeddings.shape)}"
        )
    if image_embeddings.shape[1] != queries.normal.shape[1]:
        raise BundleError(
            f"image embedding size {image_embeddings.shape[1]} differs from the text "
            f"embedding size {queries.normal.shape[1]}"
        )
    # float64: at low temperatures float32 scores saturate to exactly 0 or 1 and tie
    v = torch.nn.functional.normalize(image_embeddings.double(), dim=-1)
    device = v.device
    s_neg = _aggregate(v @ queries.normal.double().to(device).T, spec.normal_aggregation)
    s_pos = {
        fid: _aggregate(v @ q.double().to(device).T, spec.positive_aggregation)
        for fid, q in queries.findings.items()
    }
    t = spec.temperature
    wanted = {spec.contrast_of(fid) for fid in s_pos}
    unknown = sorted(wanted - set(CONTRASTS))
    if unknown:
        raise BundleError(f"contrast {unknown[0]!r} is not one of {CONTRASTS}")
    if wanted == {"normal"}:
        return {fid: (s - s_neg) / t for fid, s in s_pos.items()}
    against_all = _all_contrast_logits(s_pos, s_neg, t, queries)
    return {
        fid: (s - s_neg) / t if spec.contrast_of(fid) == "normal" else against_all[fid]
        for fid, s in s_pos.items()
    }


def _all_contrast_logits(
    s_pos: dict[str, Tensor], s_neg: Tensor, t: float, queries: EmbeddedQueries
) -> dict[str, Tensor]:
    """Log-odds of each finding's share of the softmax over {normal, bank findings}."""
    bank = queries.bank_ids if queries.bank_ids is not None else tuple(s_pos)
    competitors = [fid for fid in bank if fid != TRIAGE_FINDING and fid in s_pos]
    logits = torch.stack([s_neg, *(s_pos[f] for f in competitors)], dim=-1) / t
    out = {}
    for fid, s in s_pos.items():
        if fid == TRIAGE_FINDING:
            out[fid] = torch.logsumexp(logits[..., 1:], dim=-1) - s_neg / t
        elif fid in competitors:
            i = competitors.index(fid) + 1
            others = torch.cat([logits[..., :i], logits[..., i + 1 :]], dim=-1)
            out[fid] = s / t - torch.logsumexp(others, dim=-1)
        else:  # a user-added query: the bank's softmax plus itself
            out[fid] = s / t - torch.logsumexp(logits, dim=-1)
    return out


def finding_scores(
    image_embeddings: Tensor, queries: EmbeddedQueries, spec: ScoringSpec
) -> dict[str, Tensor]:
    """Scores in (0, 1) for each finding: finding id -> (B,), from unit vectors (B, D).

    The sigmoid of :func:`finding_logits` (float64, so low temperatures do not tie).
    """
    return {
        fid: torch.sigmoid(x) for fid, x in finding_logits(image_embeddings, queries, spec).items()
    }


def fuse_embeddings(per_sequence: Mapping[str, Tensor]) -> Tensor:
    """Mean of the unit embeddings of each sequence, renormalised: (B, D)."""
    if not per_sequence:
        raise BundleError("no sequence embeddings to fuse")
    stacked = torch.stack(
        [torch.nn.functional.normalize(e.float(), dim=-1) for e in per_sequence.values()]
    )
    return torch.nn.functional.normalize(stacked.mean(dim=0), dim=-1)


@dataclass(frozen=True)
class FusedScores:
    """Scores of a batch of studies: the fused exam scores and each sequence's."""

    exam: dict[str, Tensor]
    """finding id -> (B,)"""
    per_sequence: dict[str, dict[str, Tensor]]
    """sequence -> finding id -> (B,)"""


def fused_scores(
    per_sequence: Mapping[str, Tensor], queries: EmbeddedQueries, spec: ScoringSpec
) -> FusedScores:
    """Per-sequence scores and the exam score by ``spec.fusion``.

    Args:
        per_sequence: sequence name -> unit embeddings (B, D); all the same B.
            Missing sequences are simply absent (fusion uses those present).
    """
    if not per_sequence:
        raise BundleError("no sequence embeddings to score")
    by_sequence = {seq: finding_scores(e, queries, spec) for seq, e in per_sequence.items()}
    subsets: dict[tuple[str, ...], list[str]] = {}
    for fid in queries.findings:
        subsets.setdefault(spec.sequences_for(fid, per_sequence), []).append(fid)
    exam: dict[str, Tensor] = {}
    for subset, fids in subsets.items():
        fused = _fuse({seq: per_sequence[seq] for seq in subset}, by_sequence, queries, spec)
        exam.update({fid: calibrate(fused[fid], spec.calibration_for(fid, subset)) for fid in fids})
    if spec.calibration:
        by_sequence = {
            seq: {fid: calibrate(v, spec.calibration.get(fid)) for fid, v in scores.items()}
            for seq, scores in by_sequence.items()
        }
    return FusedScores(exam={fid: exam[fid] for fid in queries.findings}, per_sequence=by_sequence)


LOGIT_CLIP = 1e-300
"""Raw scores are clipped to [LOGIT_CLIP, 1 - 2**-53] before the calibration's logit:
float64 keeps scores down to 1e-300 apart, so only exact 0 and 1 (already ties) meet."""


def score_logit(scores: Tensor) -> Tensor:
    """``log(p / (1 - p))`` in float64, finite for every score in [0, 1]."""
    p = scores.double().clamp(LOGIT_CLIP, 1.0 - 2.0**-53)
    return torch.log(p) - torch.log1p(-p)


def calibrate_logit(logit: Tensor, params: tuple[float, float] | None) -> Tensor:
    """The calibrated log-odds ``slope * logit + intercept`` (``logit`` without params).

    What a saliency method explains: its sigmoid is the calibrated per-sequence score
    (up to float64 saturation of the raw score, beyond |logit| ~ 37)."""
    if params is None:
        return logit
    slope, intercept = params
    return slope * logit + intercept


def calibrate(scores: Tensor, params: tuple[float, float] | None) -> Tensor:
    """``sigmoid(slope * logit(scores) + intercept)``; ``scores`` unchanged without params."""
    if params is None:
        return scores
    return torch.sigmoid(calibrate_logit(score_logit(scores), params))


def _fuse(
    embeddings: Mapping[str, Tensor],
    by_sequence: Mapping[str, Mapping[str, Tensor]],
    queries: EmbeddedQueries,
    spec: ScoringSpec,
) -> dict[str, Tensor]:
    """Exam scores of every finding from the sequences of ``embeddings`` by ``spec.fusion``."""
    if spec.fusion == "mean_embedding":
        return finding_scores(fuse_embeddings(embeddings), queries, spec)
    if spec.fusion in ("mean_score", "max_score"):
        exam = {}
        for fid in queries.findings:
            stacked = torch.stack([by_sequence[seq][fid] for seq in embeddings])
            exam[fid] = stacked.mean(0) if spec.fusion == "mean_score" else stacked.max(0).values
        return exam
    raise BundleError(f"fusion {spec.fusion!r} is not one of {FUSIONS}")
