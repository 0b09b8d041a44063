from __future__ import annotations

import pytest
import torch

from dicom_node.errors import BundleError
from pipeline.model.scoring import (
    EmbeddedQueries,
    ScoringSpec,
    finding_scores,
    fuse_embeddings,
    fused_scores,
)


def _unit(*rows: list[float]) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float32), dim=-1)


QUERIES = EmbeddedQueries(
    normal=_unit([1, 0, 0, 0], [0.9, 0.1, 0, 0]),
    findings={"bleed": _unit([0, 1, 0, 0], [0.1, 0.9, 0, 0]), "mass": _unit([0, 0, 1, 0])},
)


def test_image_near_a_finding_scores_high_for_it_and_low_for_others() -> None:
    images = _unit([0.05, 1, 0, 0], [1, 0.05, 0, 0])
    scores = finding_scores(images, QUERIES, ScoringSpec(temperature=0.2))
    assert scores["bleed"][0] > 0.9 and scores["bleed"][1] < 0.1
    assert scores["mass"][0] < 0.5
    assert all(((s > 0) & (s < 1)).all() for s in scores.values())


def test_temperature_changes_scale_not_ranking() -> None:
    images = _unit([0.3, 1, 0.2, 0], [1, 0.4, 0, 0], [0.5, 0.5, 0.5, 0.1])
    cold = finding_scores(images, QUERIES, ScoringSpec(temperature=0.01))["bleed"]
    warm = finding_scores(images, QUERIES, ScoringSpec(temperature=1.0))["bleed"]
    assert torch.equal(cold.argsort(), warm.argsort())
    assert (cold - 0.5).abs().max() > (warm - 0.5).abs().max()


def test_max_aggregation_differs_from_mean() -> None:
    images = _unit([0.1, 0.9, 0, 0])
    mean = finding_scores(images, QUERIES, ScoringSpec(positive_aggregation="mean", temperature=1))
    best = finding_scores(images, QUERIES, ScoringSpec(positive_aggregation="max", temperature=1))
    assert best["bleed"] > mean["bleed"]


def test_fusion_modes() -> None:
    per_seq = {"T2": _unit([0, 1, 0, 0]), "FLAIR": _unit([1, 0, 0, 0])}
    fused = fuse_embeddings(per_seq)
    assert torch.allclose(fused.norm(dim=-1), torch.ones(1))
    mean = fused_scores(per_seq, QUERIES, ScoringSpec(fusion="mean_score"))
    high = fused_scores(per_seq, QUERIES, ScoringSpec(fusion="max_score"))
    t2, flair = mean.per_sequence["T2"]["bleed"], mean.per_sequence["FLAIR"]["bleed"]
    assert torch.allclose(mean.exam["bleed"], (t2 + flair) / 2)
    assert torch.allclose(high.exam["bleed"], torch.maximum(t2, flair))


def test_dimension_mismatch_and_empty_input_refused() -> None:
    with pytest.raises(BundleError, match="embedding size"):
        finding_scores(torch.ones(1, 3), QUERIES, ScoringSpec())
    with pytest.raises(BundleError, match="no sequence"):
        fused_scores({}, QUERIES, ScoringSpec())


def test_contrast_all_separates_findings_from_each_other() -> None:
    queries = EmbeddedQueries(
        normal=_unit([1, 0, 0, 0]),
        findings={
            "abnormal": _unit([0, 0.5, 0.5, 0]),
            "bleed": _unit([0, 1, 0, 0]),
            "mass": _unit([0, 0, 1, 0]),
        },
        bank_ids=("abnormal", "bleed", "mass"),
    )
    mass_image = _unit([0.2, 0.4, 1, 0])
    vs_normal = finding_scores(mass_image, queries, ScoringSpec(contrast="normal", temperature=0.1))
    vs_all = finding_scores(mass_image, queries, ScoringSpec(contrast="all", temperature=0.1))
    # a mass is "not normal", so against normal alone it also scores high for bleed
    assert vs_normal["bleed"] > 0.5
    assert vs_all["bleed"] < 0.5 < vs_all["mass"]
    # abnormal = 1 - P(normal); bank findings' shares sum with P(normal) to one
    p_normal = 1 - vs_all["abnormal"]
    total = p_normal + vs_all["bleed"] + vs_all["mass"]
    assert torch.allclose(total, torch.ones(1, dtype=total.dtype))
    normal_image = _unit([1, 0.1, 0.1, 0])
    assert finding_scores(normal_image, queries, ScoringSpec(contrast="all"))["abnormal"] < 0.5


def test_user_query_joins_the_bank_softmax_only_for_itself() -> None:
    bank = EmbeddedQueries(
        normal=_unit([1, 0, 0, 0]),
        findings={"bleed": _unit([0, 1, 0, 0])},
        bank_ids=("bleed",),
    )
    extra = EmbeddedQueries(
        normal=bank.normal,
        findings=bank.findings | {"cyst": _unit([0, 0, 0, 1])},
        bank_ids=("bleed",),
    )
    image = _unit([0.1, 0.2, 0, 1])
    spec = ScoringSpec(contrast="all", temperature=0.1)
    with_extra = finding_scores(image, extra, spec)
    assert torch.allclose(with_extra["bleed"], finding_scores(image, bank, spec)["bleed"])
    assert with_extra["cyst"] > 0.9


def test_low_temperature_scores_do_not_saturate_into_ties() -> None:
    queries = EmbeddedQueries(
        normal=_unit([1, 0, 0, 0]),
        findings={"abnormal": _unit([0, 1, 1, 0]), "bleed": _unit([0, 1, 0, 0])},
        bank_ids=("abnormal", "bleed"),
    )
    images = _unit([0.5, 1, 0, 0], [0.6, 1, 0, 0], [0.7, 1, 0, 0])
    scores = finding_scores(images, queries, ScoringSpec(contrast="all", temperature=0.01))
    abnormal = scores["abnormal"]
    # log-odds ~20-30: float32 would round all three to 1.0
    assert torch.all(abnormal.float() == 1.0)
    assert abnormal[0] > abnormal[1] > abnormal[2]


def test_logits_are_the_log_odds_of_the_scores_and_differentiable() -> None:
    from pipeline.model.scoring import finding_logits

    queries = EmbeddedQueries(
        normal=_unit([1, 0, 0, 0]),
        findings={
            "abnormal": _unit([0, 1, 1, 0]),
            "bleed": _unit([0, 1, 0, 0]),
            "mass": _unit([0, 0, 1, 0]),
        },
        bank_ids=("abnormal", "bleed", "mass"),
    )
    image = _unit([0.3, 0.8, 0.4, 0.1]).requires_grad_(True)
    for contrast in ("normal", "all"):
        spec = ScoringSpec(contrast=contrast, temperature=0.1)
        logits = finding_logits(image, queries, spec)
        scores = finding_scores(image, queries, spec)
        for fid in scores:
            assert torch.allclose(torch.sigmoid(logits[fid]), scores[fid])
        logits["mass"].sum().backward()
        assert image.grad is not None and image.grad.abs().sum() > 0
        image.grad = None


def test_per_finding_contrast_overrides_only_that_finding() -> None:
    queries = EmbeddedQueries(
        normal=_unit([1, 0, 0, 0]),
        findings={
            "abnormal": _unit([0, 0.5, 0.5, 0]),
            "bleed": _unit([0, 1, 0, 0]),
            "mass": _unit([0, 0, 1, 0]),
        },
        bank_ids=("abnormal", "bleed", "mass"),
    )
    images = _unit([0.2, 0.4, 1, 0], [1, 0.1, 0.1, 0], [0.1, 1, 0.3, 0])
    vs_normal = finding_scores(images, queries, ScoringSpec(contrast="normal", temperature=0.1))
    vs_all = finding_scores(images, queries, ScoringSpec(contrast="all", temperature=0.1))
    mixed_spec = ScoringSpec(contrast="normal", temperature=0.1, finding_contrast={"bleed": "all"})
    mixed = finding_scores(images, queries, mixed_spec)
    assert torch.equal(mixed["bleed"], vs_all["bleed"])
    assert torch.equal(mixed["mass"], vs_normal["mass"])
    assert torch.equal(mixed["abnormal"], vs_normal["abnormal"])
    assert mixed_spec.contrast_of("bleed") == "all" and mixed_spec.contrast_of("mass") == "normal"
    # round trip through the manifest's JSON form
    assert ScoringSpec.model_validate_json(mixed_spec.model_dump_json()) == mixed_spec
    with pytest.raises(ValueError):
        ScoringSpec(finding_contrast={"bleed": "others"})  # type: ignore[dict-item]


def test_finding_contrast_is_chosen_on_validation_where_it_helps() -> None:
    import numpy as np

    from training.bundles.calibrate import select_finding_contrasts

    queries = EmbeddedQueries(
        normal=_unit([1, 0, 0, 0]),
        findings={"bleed": _unit([0, 1, 0, 0]), "mass": _unit([0, 0, 1, 0])},
        bank_ids=("bleed", "mass"),
    )
    # masses lean towards bleed too: against normal alone they outscore the true bleeds
    bleeds = ([0.6, 1, 0, 0], [0.5, 1, 0.05, 0])
    masses = ([0, 1, 1.2, 0], [0, 1.1, 1.2, 0])
    images = _unit(*bleeds, *masses, [1, 0, 0, 0], [1, 0.1, 0, 0])
    embeddings = [{"T2": row} for row in images]
    labels = {"bleed": np.array([1, 1, 0, 0, 0, 0]), "mass": np.array([0, 0, 1, 1, 0, 0])}
    spec = ScoringSpec(contrast="normal", temperature=0.1)
    chosen = select_finding_contrasts(embeddings, labels, queries, spec)
    assert chosen.finding_contrast == {"bleed": "all"}
    assert chosen.contrast == "normal"
