from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from dicom_node.errors import TrainingError
from training.data.reports import load_reports, split_sections


def test_split_sections() -> None:
    findings, impression = split_sections(
        "FINDINGS: Dilated ventricles.\nIMPRESSION: Hydrocephalus."
    )
    assert (findings, impression) == ("Dilated ventricles.", "Hydrocephalus.")
    assert split_sections("Only text.") == ("Only text.", "")


def test_jsonl_and_csv(tmp_path: Path) -> None:
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text(
        json.dumps(
            {
                "study_uid": "1.2.3",
                "findings": "A.",
                "impression": "B.",
                "site": "s1",
                "labels": {"tumour": 1},
            }
        )
        + "\n\n"
        + json.dumps({"accession": "ACC9", "report": "Findings: C.\nConclusion: D."})
        + "\n"
    )
    first, second = load_reports(jsonl)
    assert first.key == "1.2.3" and first.labels == {"tumour": 1} and first.site == "s1"
    assert (second.key, second.findings, second.impression) == ("ACC9", "C.", "D.")
    assert second.text == "D.\nC."  # impression first: it survives truncation
    path = tmp_path / "r.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["AccessionNumber", "text"])
        writer.writeheader()
        writer.writerow({"AccessionNumber": "A1", "text": "x. IMPRESSION: y."})
    (row,) = load_reports(path)
    assert (row.accession, row.impression) == ("A1", "y.")


def test_bad_rows_name_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"findings": "x"}) + "\n")
    with pytest.raises(TrainingError, match="accession number or Study Instance UID"):
        load_reports(path)
    (tmp_path / "r.txt").write_text("x")
    with pytest.raises(TrainingError, match="suffix"):
        load_reports(tmp_path / "r.txt")
    with pytest.raises(TrainingError, match="not found"):
        load_reports(tmp_path / "missing.csv")


def test_target_text_picks_the_section_and_refuses_unknown_targets() -> None:
    from dicom_node.errors import TrainingError
    from training.data.reports import ReportRecord, target_text

    report = ReportRecord(findings="No hydrocephalus. Large meningioma.", impression="Meningioma.")
    assert target_text(report, "impression") == "Meningioma."
    assert target_text(report, "findings") == report.findings
    assert target_text(report) == report.text
    assert target_text(report, "affirmed") == "Meningioma. Large meningioma."
    with pytest.raises(TrainingError, match="'summary'"):
        target_text(report, "summary")  # type: ignore[arg-type]
