"""A tiny end-to-end run: report encoder -> image encoders -> bundle -> load -> score -> evaluate.

Seconds, not minutes: a ``tiny`` text encoder, ``tiny`` 3D CNNs on 32³ volumes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dicom_node.errors import TrainingError
from pipeline.model import load_bundle
from pipeline.preprocess import PreprocessSpec
from tests.unit.learning.conftest import Trained
from training.data.cache import read_cache
from training.evaluation.run import evaluate_bundle
from training.image import ImageTrainConfig, train_image_encoders
from training.image.train import parse_sequence_epochs
from training.text import load_report_encoder


def test_report_encoder_separates_findings(trained: Trained) -> None:
    encoder = load_report_encoder(trained.text)
    emb = encoder.encode(["Hydrocephalus.", "Normal MRI brain.", "The ventricles are dilated."])
    assert emb.shape == (3, 64)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)
    history = json.loads((trained.text / "history.json").read_text())["history"]
    assert history[-1]["mlm"] < history[0]["mlm"]


def test_image_training_writes_best_checkpoint_and_history(trained: Trained) -> None:
    for seq in ("T2", "FLAIR"):
        d = trained.image / seq
        assert (d / "best.safetensors").is_file() and (d / "last.pt").is_file()
        history = json.loads((d / "history.json").read_text())["history"]
        assert len(history) == 8
        assert history[-1]["train_loss"] < history[0]["train_loss"]
        # the constant-prediction baseline is recorded and is what a mean predictor scores
        baseline = {h["val_baseline_loss"] for h in history}
        assert len(baseline) == 1 and 0 < baseline.pop() < 1


def test_resume_continues_from_the_last_epoch(trained: Trained, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(trained.image, tmp_path / "image")
    results = train_image_encoders(
        trained.cache,
        trained.text,
        tmp_path / "image",
        ImageTrainConfig(config="tiny", epochs=9, batch_size=4, learning_rate=3e-3, augment=0.5),
        sequences=["T2"],
    )
    assert results["T2"].epochs_run == 9  # 8 restored + 1 new
    assert [h["epoch"] for h in results["T2"].history] == [float(e) for e in range(1, 10)]


def test_bundle_loads_and_scores_one_study(trained: Trained) -> None:
    bundle = load_bundle(trained.bundle)
    assert bundle.sequences == ["FLAIR", "T2"]
    assert isinstance(bundle.preprocess_spec, PreprocessSpec)
    assert bundle.preprocess_spec.output_shape == (32, 32, 32)
    cache = read_cache(trained.cache)
    study = next(s for s in cache.split("test") if s.labels["haemorrhage"])
    embeddings = {
        seq: bundle.encode_image(seq, cache.load_tensor(study, seq)) for seq in study.sequences
    }
    assert all(e.shape == (1, 64) for e in embeddings.values())
    arrays = {seq: cache.load_tensor(study, seq).numpy() for seq in study.sequences}
    same = bundle.embed_inputs(arrays | {"SWI": arrays["T2"]})  # unknown sequence ignored
    assert set(same) == set(study.sequences)
    assert all(torch.allclose(same[s], embeddings[s], atol=1e-5) for s in same)
    result = bundle.score(embeddings, extra_queries={"cyst": ["arachnoid cyst"]})
    assert result.triage is not None and result.triage.finding_id == "abnormal"
    assert set(result.findings) >= {"abnormal", "haemorrhage", "hydrocephalus", "cyst"}
    for fid in ("abnormal", "haemorrhage"):
        r = result.findings[fid]
        assert 0.0 < r.score < 1.0 and r.threshold is not None
        assert r.present == (r.score >= r.threshold)
        assert set(r.per_sequence) == set(study.sequences)
    cyst = result.findings["cyst"]
    assert cyst.user_defined and cyst.present is None and cyst.threshold is None
    assert result.device_uid.startswith("2.25.")
    json.dumps(result.to_dict())


def test_evaluation_report_on_held_out_site(trained: Trained, tmp_path: Path) -> None:
    result = evaluate_bundle(
        trained.bundle,
        trained.cache,
        tmp_path / "eval",
        split="test",
        n_boot=200,
        store_in_bundle=True,
    )
    report = result.report
    assert report["sites"] == ["C"]
    for fid in ("abnormal", "haemorrhage", "hydrocephalus"):
        overall = report["findings"][fid]["overall"]
        assert overall["low"] <= overall["auc"] <= overall["high"]
        assert set(report["findings"][fid]["operating_points"]) == {"sens90", "youden"}
    # the toy patterns are easy: the pipeline must have learnt something
    assert report["findings"]["abnormal"]["overall"]["auc"] > 0.7
    names = {p.name for p in result.files}
    assert {"evaluation.json", "evaluation.md", "roc_abnormal.png"} <= names
    assert result.label_agreement is not None
    assert "| abnormal |" in (tmp_path / "eval" / "evaluation.md").read_text()
    reloaded = load_bundle(trained.bundle)  # metrics added, weights and UID unchanged
    assert "test" in reloaded.manifest.metrics
    assert reloaded.device_uid == load_bundle(trained.bundle).device_uid


def test_text_ceiling_scores_reports_against_the_bank(trained: Trained) -> None:
    from pipeline.model.scoring import ScoringSpec
    from training.evaluation.text_ceiling import report_zero_shot_auc

    reports = [s.report for s in read_cache(trained.cache).studies]
    aucs = report_zero_shot_auc(
        load_report_encoder(trained.text), reports, spec=ScoringSpec(contrast="all")
    )
    assert set(aucs) >= {"abnormal", "haemorrhage", "hydrocephalus"}
    assert all(0.0 <= aucs[f] <= 1.0 for f in ("abnormal", "haemorrhage", "hydrocephalus"))


def test_sequences_trained_in_processes_match_one_process(trained: Trained, tmp_path: Path) -> None:
    """``processes=2`` trains the sequences side by side, with the same weights as in turn."""
    from safetensors.torch import load_file

    def cfg(processes: int) -> ImageTrainConfig:
        return ImageTrainConfig(
            config="tiny", epochs=1, batch_size=4, learning_rate=3e-3, processes=processes
        )

    serial = train_image_encoders(trained.cache, trained.text, tmp_path / "serial", cfg(1))
    parallel = train_image_encoders(trained.cache, trained.text, tmp_path / "parallel", cfg(2))
    assert sorted(parallel) == sorted(serial) and len(parallel) >= 2
    for seq in serial:
        one = load_file(str(tmp_path / "serial" / seq / "best.safetensors"))
        two = load_file(str(tmp_path / "parallel" / seq / "best.safetensors"))
        assert one.keys() == two.keys()
        assert all(torch.equal(one[k], two[k]) for k in one), seq


def test_per_sequence_epochs_override_the_default(trained: Trained, tmp_path: Path) -> None:
    cfg = ImageTrainConfig(
        config="tiny",
        epochs=1,
        batch_size=4,
        learning_rate=3e-3,
        sequence_epochs=parse_sequence_epochs("T2=2"),
    )
    results = train_image_encoders(trained.cache, trained.text, tmp_path / "image", cfg)
    assert results["T2"].epochs_run == 2 and results["FLAIR"].epochs_run == 1


def test_per_sequence_epochs_are_parsed_or_refused() -> None:
    assert parse_sequence_epochs("") == {}
    assert parse_sequence_epochs(" T1C=20, SWI=15 ") == {"T1C": 20, "SWI": 15}
    for bad in ("T1C", "T1C=0", "=3", "T1C=two"):
        with pytest.raises(TrainingError, match="SEQUENCE=EPOCHS"):
            parse_sequence_epochs(bad)
