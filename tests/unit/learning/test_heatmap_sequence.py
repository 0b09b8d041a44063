"""The heatmap sequence of each finding is the one whose own scores separate it best."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from dicom_node.errors import TrainingError
from pipeline.model.scoring import EmbeddedQueries, ScoringSpec
from training.bundles.calibrate import (
    override_heatmap_sequences,
    parse_heatmap_sequences,
    parse_heatmap_sources,
    resolve_heatmap_sources,
    select_heatmap_sequences,
)


def test_each_finding_is_drawn_on_the_sequence_that_sees_it() -> None:
    rng = np.random.default_rng(0)
    dim = 8
    normal = torch.eye(dim)[:1]
    queries = EmbeddedQueries(
        normal=normal,
        findings={"infarct": torch.eye(dim)[1:2], "hydro": torch.eye(dim)[2:3]},
    )
    n = 40
    infarct = rng.integers(0, 2, n)
    hydro = rng.integers(0, 2, n)

    def embedding(signal: np.ndarray, axis: int) -> list[torch.Tensor]:
        out = []
        for value in signal:
            v = rng.normal(0, 0.3, dim)
            v[0] += 1.0
            v[axis] += 1.5 * value
            out.append(torch.nn.functional.normalize(torch.tensor(v, dtype=torch.float32), dim=0))
        return out

    dwi = embedding(infarct, 1)  # DWI sees infarcts, not hydrocephalus
    t2 = embedding(hydro, 2)  # T2 sees hydrocephalus, not infarcts
    embeddings = [{"DWI": dwi[i], "T2": t2[i]} for i in range(n)]
    labels = {"infarct": infarct, "hydro": hydro}
    chosen = select_heatmap_sequences(embeddings, labels, queries, ScoringSpec())
    assert chosen == {"hydro": "T2", "infarct": "DWI"}
    # a study without the chosen sequence still gets a map elsewhere (study_analysis)
    from types import SimpleNamespace

    from pipeline.study_analysis import _best_sequence

    scores: Any = SimpleNamespace(
        findings={"infarct": SimpleNamespace(per_sequence={"DWI": 0.2, "T2": 0.9})}
    )
    assert _best_sequence(scores, "infarct", ["DWI", "T2"], "DWI") == "DWI"
    assert _best_sequence(scores, "infarct", ["T2"], "DWI") == "T2"
    assert _best_sequence(scores, "infarct", ["DWI", "T2"], None) == "T2"


def test_heatmap_sequences_set_by_hand_override_the_validation_choice() -> None:
    assert parse_heatmap_sequences(" haemorrhage=FLAIR, tumour = T2 ,") == {
        "haemorrhage": "FLAIR",
        "tumour": "T2",
    }
    assert parse_heatmap_sequences("") == {}
    for bad in ("haemorrhage", "haemorrhage=", "=FLAIR"):
        with pytest.raises(TrainingError, match="FINDING=SEQUENCE"):
            parse_heatmap_sequences(bad)
    chosen = {"haemorrhage": "DWI", "tumour": "FLAIR"}
    findings, sequences = ["haemorrhage", "tumour"], ["DWI", "FLAIR"]
    merged = override_heatmap_sequences(chosen, {"haemorrhage": "FLAIR"}, findings, sequences)
    assert merged == {"haemorrhage": "FLAIR", "tumour": "FLAIR"}
    assert chosen["haemorrhage"] == "DWI"  # the validation choice is not modified
    with pytest.raises(TrainingError, match="unknown finding"):
        override_heatmap_sequences(chosen, {"bleed": "FLAIR"}, findings, sequences)
    with pytest.raises(TrainingError, match="no encoder"):
        override_heatmap_sequences(chosen, {"haemorrhage": "SWI"}, findings, sequences)


def test_heatmap_sources_name_several_sequences_or_all() -> None:
    assert parse_heatmap_sources(" tumour=all, haemorrhage = DWI+FLAIR ,") == {
        "tumour": ["all"],
        "haemorrhage": ["DWI", "FLAIR"],
    }
    assert parse_heatmap_sources("") == {}
    for bad in ("tumour", "tumour=", "=all", "tumour=+"):
        with pytest.raises(TrainingError, match="FINDING=SEQUENCE"):
            parse_heatmap_sources(bad)
    findings, sequences = ["haemorrhage", "tumour"], ["T2", "DWI", "FLAIR"]
    resolved = resolve_heatmap_sources(
        {"tumour": ["all"], "haemorrhage": ["FLAIR", "DWI", "FLAIR"]}, findings, sequences
    )
    assert resolved == {"haemorrhage": ["DWI", "FLAIR"], "tumour": ["DWI", "FLAIR", "T2"]}
    with pytest.raises(TrainingError, match="unknown finding"):
        resolve_heatmap_sources({"bleed": ["all"]}, findings, sequences)
    with pytest.raises(TrainingError, match="no encoder"):
        resolve_heatmap_sources({"tumour": ["FLAIR", "T1C"]}, findings, sequences)
