"""A finding may be scored from the sequences that show it (chosen on validation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dicom_node.errors import TrainingError
from pipeline.model.scoring import EmbeddedQueries, ScoringSpec, fused_scores
from training.bundles.calibrate import select_finding_sequences

DIM = 8
QUERIES = EmbeddedQueries(
    normal=torch.eye(DIM)[:1],
    findings={
        "infarct": torch.eye(DIM)[1:2],
        "hydro": torch.eye(DIM)[2:3],
        "mass": torch.eye(DIM)[3:4],
    },
)


def _embeddings(
    rng: np.random.Generator, signals: dict[int, np.ndarray], noise: float = 0.3
) -> list[torch.Tensor]:
    """Unit vectors near the normal reference, pushed along ``axis`` where the signal is 1."""
    n = len(next(iter(signals.values())))
    out = []
    for i in range(n):
        v = rng.normal(0, noise, DIM)
        v[0] += 1.0
        for axis, signal in signals.items():
            v[axis] += 1.5 * signal[i]
        out.append(torch.nn.functional.normalize(torch.tensor(v, dtype=torch.float32), dim=0))
    return out


@pytest.mark.parametrize("fusion", ["mean_embedding", "mean_score", "max_score"])
def test_a_finding_restricted_to_one_sequence_scores_from_it_alone(fusion: str) -> None:
    rng = np.random.default_rng(1)
    dwi = torch.stack(_embeddings(rng, {1: np.array([1, 0, 1])}))
    t2 = torch.stack(_embeddings(rng, {2: np.array([0, 1, 1])}))
    spec = ScoringSpec(fusion=fusion, finding_sequences={"infarct": ["DWI"]})  # type: ignore[arg-type]
    both = fused_scores({"DWI": dwi, "T2": t2}, QUERIES, spec)
    everything = fused_scores(
        {"DWI": dwi, "T2": t2}, QUERIES, spec.model_copy(update={"finding_sequences": {}})
    )
    dwi_alone = fused_scores({"DWI": dwi}, QUERIES, spec)
    assert torch.allclose(both.exam["infarct"], both.per_sequence["DWI"]["infarct"])
    assert torch.allclose(both.exam["infarct"], dwi_alone.exam["infarct"])
    assert not torch.allclose(both.exam["infarct"], everything.exam["infarct"])
    # the other findings still fuse every sequence
    for fid in ("hydro", "mass"):
        assert torch.allclose(both.exam[fid], everything.exam[fid])
    # a study without DWI falls back to what it has instead of failing
    t2_only = fused_scores({"T2": t2}, QUERIES, spec)
    assert torch.allclose(t2_only.exam["infarct"], t2_only.per_sequence["T2"]["infarct"])
    assert spec.sequences_for("infarct", ["T2", "FLAIR"]) == ("FLAIR", "T2")
    assert ScoringSpec.model_validate_json(spec.model_dump_json()) == spec


def test_sequences_are_chosen_per_finding_where_they_help() -> None:
    rng = np.random.default_rng(0)
    n = 80
    infarct, hydro, mass = (rng.integers(0, 2, n) for _ in range(3))
    # DWI sees infarcts, T2 hydrocephalus; both see masses (with their own noise).
    # Weak single-sequence signals, so that averaging in a blind sequence costs AUC;
    # masses are plain on both (nothing to gain from restricting them).
    dwi = _embeddings(rng, {1: infarct * 0.3, 3: mass * 1.0})
    t2 = _embeddings(rng, {2: hydro * 0.3, 3: mass * 1.0})
    embeddings = [{"DWI": dwi[i], "T2": t2[i]} for i in range(n)]
    labels = {"infarct": infarct, "hydro": hydro, "mass": mass}
    spec = ScoringSpec(fusion="mean_score")
    chosen = select_finding_sequences(embeddings, labels, QUERIES, spec)
    assert chosen.finding_sequences == {"hydro": ["T2"], "infarct": ["DWI"]}
    # without a gain to show for it, nothing is restricted
    unchanged = select_finding_sequences(embeddings, labels, QUERIES, spec, min_gain=1.0)
    assert unchanged.finding_sequences == {}


def test_max_fusion_is_tried_only_when_asked_for() -> None:
    from pipeline.model.scoring import FUSIONS
    from training.bundles.calibrate import select_scoring

    rng = np.random.default_rng(2)
    n = 120
    infarct = rng.integers(0, 2, n)
    where = rng.integers(0, 2, n)
    # an infarct shows strongly on one sequence only; some normal studies look
    # mildly suspicious on both: only the maximum over sequences separates them
    mimic = (1 - infarct) * rng.integers(0, 2, n) * 0.6
    dwi = _embeddings(rng, {1: infarct * where * 1.5 + mimic}, noise=0.1)
    flair = _embeddings(rng, {1: infarct * (1 - where) * 1.5 + mimic}, noise=0.1)
    embeddings = [{"DWI": dwi[i], "FLAIR": flair[i]} for i in range(n)]
    labels = {"infarct": infarct}
    queries = EmbeddedQueries(
        normal=QUERIES.normal, findings={"infarct": QUERIES.findings["infarct"]}
    )
    anything, _ = select_scoring(embeddings, labels, queries, fusions=FUSIONS)
    assert anything.fusion == "max_score"  # best on validation here...
    robust, tried = select_scoring(embeddings, labels, queries)
    assert robust.fusion != "max_score"  # ...but not tried by default
    assert {row["fusion"] for row in tried} == {"mean_embedding", "mean_score"}


def test_one_se_rule_prefers_fewer_sequences_unless_more_are_clearly_better() -> None:
    rng = np.random.default_rng(3)
    n = 120
    infarct, mass = rng.integers(0, 2, n), rng.integers(0, 2, n)
    # DWI shows infarcts, T2 a little less (adding T2 changes the AUC by less
    # than its standard error). Masses are faint on each sequence with independent
    # noise: the two together are clearly better than either.
    dwi = _embeddings(rng, {1: infarct * 0.8, 3: mass * 0.25})
    t2 = _embeddings(rng, {1: infarct * 0.6, 3: mass * 0.25})
    embeddings = [{"DWI": dwi[i], "T2": t2[i]} for i in range(n)]
    labels = {"infarct": infarct, "mass": mass}
    queries = EmbeddedQueries(
        normal=QUERIES.normal,
        findings={"infarct": QUERIES.findings["infarct"], "mass": QUERIES.findings["mass"]},
    )
    spec = ScoringSpec(fusion="mean_score")
    parsimonious = select_finding_sequences(embeddings, labels, queries, spec, rule="one_se")
    assert parsimonious.finding_sequences == {"infarct": ["DWI"]}
    # the same data under the default rule: DWI alone is not 0.02 better than both
    assert select_finding_sequences(embeddings, labels, queries, spec).finding_sequences == {}
    with pytest.raises(TrainingError, match="not one of"):
        select_finding_sequences(embeddings, labels, queries, spec, rule="best")  # type: ignore[arg-type]
