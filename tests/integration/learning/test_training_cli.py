"""The training commands chained on generated synthetic DICOM studies.

synth -> prepare -> report-encoder -> image-encoders -> bundle -> evaluate, through
the ``dicom-node-train`` click group, with tiny configs and 32³ volumes. It checks
the plumbing on real DICOM (series selection, diffusion, preprocessing, splits,
resume), not the accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from dicom_node.errors import TrainingError
from pipeline.model import load_bundle
from training.cli import main
from training.data.cache import read_cache

pytestmark = pytest.mark.slow


def _run(args: list[str]) -> str:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_cli_chain_on_synthetic_dicom(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _chain(tmp_path)
    finally:
        torch.set_num_threads(threads)


def _chain(tmp_path: Path) -> None:
    from training.synth.dataset import generate_dataset

    data = tmp_path / "synth"
    generate_dataset(data, 9, seed=11, sites=None, workers=1, size="small")
    cache = tmp_path / "cache"
    prepare_args = [
        "prepare",
        "--dicom",
        str(data / "dicom"),
        "--reports",
        str(data / "reports.jsonl"),
        "--labels",
        str(data / "labels.csv"),
        "--out",
        str(cache),
        "--size",
        "32",
        "--sequences",
        "T2,FLAIR,DWI",
        "--test-sites",
        "philips_c",
        "--val-fraction",
        "0.34",
        "--seed",
        "1",
    ]
    # a first run stopped after 4 studies, then resumed
    first = json.loads(_run([*prepare_args, "--limit", "4"]))
    assert first["cached"] + sum(first["skipped"].values()) == 4
    second = json.loads(_run([*prepare_args, "--workers", "2"]))
    assert second["resumed"] == 4
    assert second["splits"].get("test") == 3
    prepared = read_cache(cache)
    assert len(prepared.studies) == 9
    assert {s.split for s in prepared.studies if s.site == "philips_c"} == {"test"}
    assert all(s.labels and "abnormal" in s.labels for s in prepared.studies)
    assert "T2" in prepared.sequences and "DWI" in prepared.sequences
    assert (cache / "summary.json").is_file()

    text = tmp_path / "text"
    _run(
        [
            "report-encoder",
            "--cache",
            str(cache),
            "--out",
            str(text),
            "--config",
            "tiny",
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--vocab-size",
            "400",
        ]
    )
    images = tmp_path / "images"
    out = _run(
        [
            "image-encoders",
            "--cache",
            str(cache),
            "--report-encoder",
            str(text),
            "--out",
            str(images),
            "--config",
            "tiny",
            "--epochs",
            "2",
            "--batch-size",
            "2",
            "--sequences",
            "T2,FLAIR",
        ]
    )
    assert "T2" in json.loads(out)
    bundle = tmp_path / "bundle"
    _run(
        [
            "bundle",
            "--cache",
            str(cache),
            "--report-encoder",
            str(text),
            "--image-encoders",
            str(images),
            "--out",
            str(bundle),
            "--version",
            "0.0.1",
            "--heatmap-sequence",
            "haemorrhage=T2,abnormal=T2",
            "--operating-point",
            "youden,abnormal=sens90",
        ]
    )
    loaded = load_bundle(bundle)
    assert set(loaded.sequences) <= {"T2", "FLAIR"}
    points = {f.id: f.operating_point for f in loaded.manifest.queries.findings}
    assert points.pop("abnormal") == "sens90" and set(points.values()) == {"youden"}
    drawn_on = loaded.manifest.scoring.heatmap_sequence
    assert drawn_on["haemorrhage"] == drawn_on["abnormal"] == "T2"
    bundle_args = ["bundle", "--cache", str(cache), "--report-encoder", str(text)]
    bundle_args += ["--image-encoders", str(images), "--out", str(tmp_path / "refused")]
    malformed = CliRunner().invoke(main, [*bundle_args, "--heatmap-sequence", "haemorrhage"])
    assert malformed.exit_code == 2 and "FINDING=SEQUENCE" in malformed.output
    bad_point = CliRunner().invoke(main, [*bundle_args, "--operating-point", "youden,cyst=best"])
    assert bad_point.exit_code == 2 and "'best' is not one of" in bad_point.output
    with pytest.raises(TrainingError, match="no encoder"):
        CliRunner().invoke(
            main, [*bundle_args, "--heatmap-sequence", "haemorrhage=SWI"], catch_exceptions=False
        )
    assert not (tmp_path / "refused").exists()
    assert loaded.preprocess_spec.output_shape == (32, 32, 32)
    report = _run(
        [
            "evaluate",
            "--bundle",
            str(bundle),
            "--cache",
            str(cache),
            "--out",
            str(tmp_path / "eval"),
            "--n-boot",
            "50",
            "--store-in-bundle",
            "--title",
            "held-out check",
        ]
    )
    assert "| finding |" in report
    assert (tmp_path / "eval" / "evaluation.json").is_file()
    assert (tmp_path / "eval" / "evaluation.md").read_text().startswith("# held-out check\n")
    assert "test" in load_bundle(bundle).manifest.metrics
