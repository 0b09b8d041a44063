"""``dicom-node analyze`` on a study folder, and ``results`` rendering an analysis result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dicom_node.cli import main
from dicom_node.cli.results import render_text
from dicom_node.errors import ConfigError
from pipeline.cli_analyze import read_queries
from pipeline.results.sr_read import read_sr_file


def _invoke(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.stdout


def test_analyze_json_with_user_queries_and_output_folder(
    abnormal_study: Path, tiny_bundle_dir: Path, tmp_path: Path
) -> None:
    queries = tmp_path / "queries.toml"
    queries.write_text('arachnoid_cyst = ["arachnoid cyst", "extra-axial cyst"]\n')
    code, out = _invoke(
        [
            "analyze",
            str(abnormal_study),
            "--bundle",
            str(tiny_bundle_dir),
            "--queries",
            str(queries),
            "--json",
            "--out",
            str(tmp_path / "out"),
            "--device",
            "cpu",
        ]
    )
    assert code == 0, out
    doc = json.loads(out)
    assert doc["status"] == "analysed"
    assert set(doc["sequences_used"]) == {"T2", "FLAIR", "DWI"}
    cyst = doc["findings"]["arachnoid_cyst"]
    assert cyst["user_defined"] and cyst["present"] is None and 0 < cyst["score"] < 1
    assert doc["triage"]["abnormal"] == (doc["triage"]["score"] >= doc["triage"]["threshold"])
    assert all(Path(p).is_file() for p in doc["files"])
    assert {Path(p).parent for p in doc["files"]} == {tmp_path / "out"}
    sr = read_sr_file(doc["sr"]["path"])
    in_sr = {f.finding_id: f for f in sr.findings}  # type: ignore[union-attr]
    # In the SR too: scored, not called.
    assert in_sr["arachnoid_cyst"].present is None and in_sr["arachnoid_cyst"].threshold is None
    assert in_sr["arachnoid_cyst"].score == pytest.approx(cyst["score"])
    assert in_sr["arachnoid_cyst"].display_name == "User query: arachnoid_cyst"
    text = render_text(
        {
            "study_uid": doc["study_uid"],
            "study_state": "results_ready",
            "version": 1,
            "job_state": "succeeded",
            "job_version": 1,
            "result": doc,
            "not_analysed_reason": None,
            "error": None,
        }
    )
    assert "triage:" in text and "haemorrhage" in text and "stages:" in text


def test_analyze_text_output_without_heatmaps(abnormal_study: Path, tiny_bundle_dir: Path) -> None:
    code, out = _invoke(
        ["analyze", str(abnormal_study), "--bundle", str(tiny_bundle_dir), "--no-heatmaps"]
    )
    assert code == 0, out
    assert "sequences used: DWI, FLAIR, T2" in out
    assert "not for diagnostic use" in out
    assert "heatmap " not in out


def test_analyze_refuses_bad_queries(
    abnormal_study: Path, tiny_bundle_dir: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "q.json"
    bad.write_text('{"cyst": [1, 2]}')
    code, _ = _invoke(
        ["analyze", str(abnormal_study), "--bundle", str(tiny_bundle_dir), "--queries", str(bad)]
    )
    assert code == 2
    with pytest.raises(ConfigError, match="cyst"):
        read_queries(bad)
    bad.write_text("not json")
    with pytest.raises(ConfigError, match="cannot be read"):
        read_queries(bad)
    bad.write_text('{"Arachnoid cyst": "arachnoid cyst"}')
    with pytest.raises(ConfigError, match="lower-case"):
        read_queries(bad)
    bad.write_text('{"cyst": ["  "]}')
    with pytest.raises(ConfigError, match="no sentence"):
        read_queries(bad)
    good = tmp_path / "q2.json"
    good.write_text('{"cyst": "arachnoid cyst"}')
    assert read_queries(good) == {"cyst": ["arachnoid cyst"]}
