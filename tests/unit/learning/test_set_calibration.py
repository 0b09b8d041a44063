"""One Platt map per set of sequences a score is fused from (studies lack some sequences)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.model.scoring import EmbeddedQueries, ScoringSpec, fused_scores, sequence_set_key
from training.bundles.calibrate import adopt_set_calibration, fit_set_calibration
from training.evaluation.metrics import auc_mann_whitney
from training.evaluation.scoring import score_studies

DIM = 6
QUERIES = EmbeddedQueries(
    normal=torch.eye(DIM)[:1],
    findings={"mass": torch.eye(DIM)[1:2], "hydro": torch.eye(DIM)[2:3]},
)


def _unit(v: np.ndarray) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.tensor(v, dtype=torch.float32), dim=0)


def _studies(n: int, seed: int) -> tuple[list[dict[str, torch.Tensor]], dict[str, np.ndarray]]:
    """Half the studies have T1C, which shows the mass; T2 does not show it, and its
    embeddings lean towards the mass query in every study (a site's contrast)."""
    rng = np.random.default_rng(seed)
    mass = (rng.random(n) < 0.3).astype(int)
    hydro = (rng.random(n) < 0.3).astype(int)
    embeddings = []
    for i in range(n):
        t2 = rng.normal(0, 0.3, DIM)
        t2[0] += 1.0
        t2[1] += 0.6  # no signal, an offset
        t2[2] += 1.2 * hydro[i]
        study = {"T2": _unit(t2)}
        if i % 2 == 0:
            t1c = rng.normal(0, 0.3, DIM)
            t1c[0] += 1.0
            t1c[1] += 1.5 * mass[i]
            study["T1C"] = _unit(t1c)
        embeddings.append(study)
    return embeddings, {"mass": mass, "hydro": hydro}


def test_each_sequence_set_gets_its_own_map_and_the_mixed_ranking_improves() -> None:
    embeddings, labels = _studies(400, seed=0)
    spec = ScoringSpec(fusion="mean_score", finding_sequences={"mass": ["T1C"]})
    per_set = fit_set_calibration(embeddings, labels, QUERIES, spec)
    assert set(per_set["mass"]) == {"T1C", "T2"}  # with T1C: T1C alone; without: fallback
    assert set(per_set["hydro"]) == {"T1C+T2", "T2"}
    calibrated = spec.model_copy(update={"set_calibration": per_set})

    test, test_labels = _studies(400, seed=1)
    plain = score_studies(test, QUERIES, spec)["mass"]
    mapped = score_studies(test, QUERIES, calibrated)["mass"]
    has_t1c = np.array(["T1C" in e for e in test])
    y = test_labels["mass"]
    # within a set the ranking is unchanged ...
    for group in (has_t1c, ~has_t1c):
        assert auc_mann_whitney(y[group], mapped[group]) == pytest.approx(
            auc_mann_whitney(y[group], plain[group])
        )
    # ... across sets it no longer ranks every T2-only study above the T1C negatives
    assert auc_mann_whitney(y, mapped) > auc_mann_whitney(y, plain) + 0.02
    # without T1C the mass cannot be seen: a flat score near its prevalence there
    assert mapped[~has_t1c].mean() == pytest.approx(y[~has_t1c].mean(), abs=0.08)
    assert mapped[~has_t1c].std() < 0.1
    assert ScoringSpec.model_validate_json(calibrated.model_dump_json()) == calibrated


def test_inference_picks_the_map_of_the_sequences_it_used() -> None:
    spec = ScoringSpec(
        finding_sequences={"mass": ["T1C"]},
        calibration={"mass": (1.0, 0.0)},
        set_calibration={"mass": {"T2": (0.001, -2.0)}},
    )
    assert spec.calibration_for("mass", ("T2",)) == (0.001, -2.0)
    assert spec.calibration_for("mass", ("T1C",)) == (1.0, 0.0)
    assert spec.calibration_for("hydro", ("T2",)) is None
    assert sequence_set_key(["T2", "DWI", "T2"]) == "DWI+T2"
    t2 = torch.stack([_unit(np.eye(DIM)[0] + 0.5 * np.eye(DIM)[1]), _unit(np.eye(DIM)[0])])
    without = fused_scores({"T2": t2}, QUERIES, spec).exam["mass"]
    # slope 0.001, intercept -2: the T2-only score is sigmoid(-2) whatever T2 shows
    flat = torch.sigmoid(torch.tensor(-2.0, dtype=torch.float64))
    assert torch.allclose(without, flat, atol=5e-3)
    t1c = torch.stack([_unit(np.eye(DIM)[0]), _unit(0.2 * np.eye(DIM)[0] + np.eye(DIM)[1])])
    with_t1c = fused_scores({"T2": t2, "T1C": t1c}, QUERIES, spec).exam["mass"]
    assert with_t1c[1] > 0.9 and with_t1c[0] < 0.1


def test_small_sets_keep_the_joint_map_and_one_set_gets_none() -> None:
    embeddings, labels = _studies(60, seed=2)  # 30 per set: below min_studies=40
    spec = ScoringSpec(fusion="mean_score", finding_sequences={"mass": ["T1C"]})
    assert fit_set_calibration(embeddings, labels, QUERIES, spec) == {}
    everyone = [{"T2": e["T2"]} for e in embeddings]
    assert fit_set_calibration(everyone, labels, QUERIES, spec, min_studies=10) == {}


def test_the_maps_are_kept_only_when_validation_does_not_get_worse() -> None:
    embeddings, labels = _studies(400, seed=3)
    spec = ScoringSpec(fusion="mean_score", finding_sequences={"mass": ["T1C"]})
    adopted = adopt_set_calibration(embeddings, labels, QUERIES, spec)
    assert adopted.set_calibration and "mass" in adopted.set_calibration
    # every study has both sequences: nothing to fit, the spec is returned as it was
    both = [e for e in embeddings if "T1C" in e]
    subset = np.array(["T1C" in e for e in embeddings])
    same = adopt_set_calibration(both, {k: v[subset] for k, v in labels.items()}, QUERIES, spec)
    assert same is spec
