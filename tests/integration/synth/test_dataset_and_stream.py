"""Dataset folders (deterministic whatever the workers) and the streaming path."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from click.testing import CliRunner

from pipeline.analysis import DEMO_BUNDLE
from pipeline.preprocess import PreprocessSpec
from training.cli import main as train_cli
from training.data.cache import read_cache
from training.data.prepare import PrepareConfig, prepare_cache
from training.synth import FINDINGS, generate_study
from training.synth.dataset import generate_dataset, study_seed, study_site
from training.synth.stream import prepare_study, stream_to_cache

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMALL_SPEC = PreprocessSpec(spacing_mm=(2.0, 2.0, 2.0), output_shape=(48, 48, 48))


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_dataset_is_identical_with_one_or_two_workers(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    generate_dataset(one, 2, seed=5, sites=None, workers=1, size="small")
    args = ["synth", "--out", str(two), "--studies", "2", "--seed", "5", "--workers", "2"]
    result = CliRunner().invoke(train_cli, [*args, "--size", "small"])
    assert result.exit_code == 0, result.output
    digest_one, digest_two = _tree_digest(one), _tree_digest(two)
    assert digest_one == digest_two
    assert len([k for k in digest_one if k.endswith(".dcm")]) > 100

    rows = list(csv.DictReader((one / "labels.csv").open()))
    reports = [json.loads(line) for line in (one / "reports.jsonl").read_text().splitlines()]
    assert len(rows) == len(reports) == 2
    assert [r["site"] for r in rows] == ["siemens_a", "ge_b"]
    for i, (row, rep) in enumerate(zip(rows, reports, strict=True)):
        study = generate_study(
            study_seed(5, i), study_site(["siemens_a", "ge_b", "philips_c"], i), size="small"
        )
        assert row["study_uid"] == rep["study_uid"] == study.study_uid
        assert rep["text"] == study.report.text
        assert rep["findings_section"] and rep["impression_section"]
        for f in FINDINGS:
            assert int(row[f]) == int(study.findings[f])
        assert (
            int(row["normal"]) == int(not any(study.findings.values())) == 1 - int(row["abnormal"])
        )
        assert (one / "dicom" / row["accession"]).is_dir()
        for finding, mask in study.masks.items():
            image = sitk.ReadImage(str(one / "masks" / row["accession"] / f"{finding}.nii.gz"))
            array = sitk.GetArrayFromImage(image)  # [k, j, i]
            idx = np.argwhere(array > 0)[:, ::-1]
            points = np.array(
                [image.TransformIndexToPhysicalPoint([int(v) for v in p]) for p in idx[:50]]
            )
            truth = {tuple(np.round(p, 2)) for p in mask.world_points()}
            assert all(tuple(np.round(p, 2)) in truth for p in points)


def test_stream_cache_equals_prepare_from_dicom_files(tmp_path: Path) -> None:
    cfg = PrepareConfig(spec=SMALL_SPEC, sequences=("T2", "DWI", "ADC"))
    generate_dataset(
        tmp_path / "data", 2, seed=9, sites=["siemens_a", "philips_c"], workers=1, size="small"
    )
    prepare_cache(
        tmp_path / "data" / "dicom", tmp_path / "data" / "reports.jsonl", tmp_path / "files", cfg
    )
    summary = stream_to_cache(
        tmp_path / "stream", 2, 9, ["siemens_a", "philips_c"], cfg, size="small"
    )
    assert summary.cached == 2
    from_files = {s.key: s for s in read_cache(tmp_path / "files").studies}
    streamed = read_cache(tmp_path / "stream")
    assert {s.key for s in streamed.studies} == set(from_files)
    compared = 0
    for study in streamed.studies:
        other = from_files[study.key]
        assert study.split == other.split
        assert study.findings == other.findings and study.impression == other.impression
        for seq in other.sequences:
            a = read_cache(tmp_path / "stream").load_tensor(study, seq).numpy()
            b = read_cache(tmp_path / "files").load_tensor(other, seq).numpy()
            np.testing.assert_array_equal(a, b)
            compared += 1
    assert compared >= 4


def test_a_cache_made_in_parts_lists_them_and_refuses_another_recipe(tmp_path: Path) -> None:
    from dicom_node.errors import ConfigError

    cfg = PrepareConfig(spec=SMALL_SPEC, sequences=("T2",), test_sites=("philips_c",))
    first = stream_to_cache(tmp_path, 2, 3, ["siemens_a"], cfg, size="small")
    second = stream_to_cache(tmp_path, 1, 4, ["philips_c"], cfg, size="small")
    assert first.cached == 2 and second.cached == 1
    cache = read_cache(tmp_path)
    assert {s.site: s.split for s in cache.studies}["philips_c"] == "test"
    assert len(cache.studies) == 3
    meta = json.loads((tmp_path / "cache.json").read_text())
    parts = meta["source"]["synthetic"]
    assert [(p["seed"], p["sites"], p["studies"]) for p in parts] == [
        (3, ["siemens_a"], 2),
        (4, ["philips_c"], 1),
    ]
    # resuming a part does not list it twice
    stream_to_cache(tmp_path, 1, 4, ["philips_c"], cfg, size="small")
    assert len(json.loads((tmp_path / "cache.json").read_text())["source"]["synthetic"]) == 2
    # tensors made another way must not join this cache
    other = PrepareConfig(
        spec=SMALL_SPEC.model_copy(update={"spacing_mm": (1.0, 1.0, 1.0)}),
        sequences=("T2",),
        test_sites=("philips_c",),
    )
    with pytest.raises(ConfigError, match="preprocessing"):
        stream_to_cache(tmp_path, 1, 5, ["ge_b"], other, size="small")
    with pytest.raises(ConfigError, match="sequences"):
        stream_to_cache(tmp_path, 1, 5, ["ge_b"], PrepareConfig(spec=SMALL_SPEC), size="small")


def test_prepared_study_is_small() -> None:
    spec = PreprocessSpec()  # ALIGN's 120^3
    prepared = prepare_study(study_seed(1, 0), "ge_b", spec, ("T2", "FLAIR"), size="small")
    assert set(prepared.inputs.inputs) == {"T2", "FLAIR"}
    assert prepared.nbytes() <= 10 * 1024 * 1024
    assert prepared.labels["normal"] + prepared.labels["abnormal"] == 1


def test_cli_writes_a_prepared_cache(tmp_path: Path) -> None:
    args = ["synth", "--out", str(tmp_path), "--studies", "1", "--seed", "3", "--size", "small"]
    result = CliRunner().invoke(
        train_cli, [*args, "--prepared", "FLAIR", "--site", "ge_b", "--test-site", "ge_b"]
    )
    assert result.exit_code == 0, result.output
    cache = read_cache(tmp_path)
    assert len(cache.studies) == 1
    assert all(s.split == "test" and s.site == "ge_b" for s in cache.studies)
    assert all(set(s.sequences) == {"FLAIR"} for s in cache.studies)
    assert not list(tmp_path.rglob("*.dcm"))
    tensor = cache.load_tensor(cache.studies[0], "FLAIR")
    assert tuple(tensor.shape) == (1, 120, 120, 120)


def test_cli_prepares_a_cache_as_a_bundle_does(tmp_path: Path) -> None:
    """--preprocess-like: the demo bundle's 64^3 at 2 mm, not the 120^3 default."""
    args = ["synth", "--out", str(tmp_path / "c"), "--studies", "1", "--seed", "3"]
    args += ["--size", "small", "--prepared", "T2", "--site", "ge_b"]
    result = CliRunner().invoke(train_cli, [*args, "--preprocess-like", str(DEMO_BUNDLE)])
    assert result.exit_code == 0, result.output
    cache = read_cache(tmp_path / "c")
    demo = json.loads((DEMO_BUNDLE / "manifest.json").read_text())["preprocessing"]
    cache.require_preprocessing(demo, "the demo bundle")  # does not raise
    assert tuple(cache.load_tensor(cache.studies[0], "T2").shape) == (1, 64, 64, 64)


def test_cli_refuses_a_folder_without_a_manifest_as_bundle(tmp_path: Path) -> None:
    args = ["synth", "--out", str(tmp_path / "c"), "--studies", "1", "--prepared", "T2"]
    result = CliRunner().invoke(train_cli, [*args, "--preprocess-like", str(tmp_path)])
    assert result.exit_code == 2
    assert "manifest.json not found" in result.output
    assert not (tmp_path / "c").exists()
