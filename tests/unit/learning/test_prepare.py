from __future__ import annotations

from collections import Counter
from pathlib import Path

from training.data.prepare import PrepareConfig, assign_split, read_label_file, sequences_arg


def test_split_is_by_patient_stable_and_near_the_fractions() -> None:
    cfg = PrepareConfig(val_fraction=0.2, test_fraction=0.1, seed=4)
    splits = [assign_split(f"patient-{i}", "siteA", cfg) for i in range(2000)]
    assert splits == [assign_split(f"patient-{i}", "siteA", cfg) for i in range(2000)]
    counts = Counter(splits)
    assert abs(counts["test"] / 2000 - 0.1) < 0.03
    assert abs(counts["val"] / 2000 - 0.2) < 0.03
    # the same patient always lands in the same split, whatever the site or study
    assert assign_split("patient-7", "siteB", cfg) == assign_split("patient-7", "siteA", cfg)
    # another seed reshuffles
    other = PrepareConfig(val_fraction=0.2, test_fraction=0.1, seed=5)
    assert splits != [assign_split(f"patient-{i}", "siteA", other) for i in range(2000)]


def test_held_out_sites_go_to_test_and_no_one_else_does() -> None:
    cfg = PrepareConfig(test_sites=("ge_b",), val_fraction=0.2)
    assert {assign_split(f"p{i}", "ge_b", cfg) for i in range(50)} == {"test"}
    others = {assign_split(f"p{i}", "siemens_a", cfg) for i in range(500)}
    assert others == {"train", "val"}


def test_with_held_out_sites_val_takes_only_the_val_fraction() -> None:
    # the random test share is not used when sites are held out: it must not go to val
    cfg = PrepareConfig(test_sites=("ge_b",), val_fraction=0.2, test_fraction=0.15)
    counts = Counter(assign_split(f"patient-{i}", "siemens_a", cfg) for i in range(2000))
    assert abs(counts["val"] / 2000 - 0.2) < 0.03
    assert abs(counts["train"] / 2000 - 0.8) < 0.03


def test_label_file_by_uid_and_accession(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(
        "study_uid,accession,site,normal,abnormal,tumour\n1.2.3,ACC1,ge_b,0,1,1\n,ACC2,ge_b,1,0,\n"
    )
    labels = read_label_file(path)
    assert labels["1.2.3"] == labels["ACC1"] == {"abnormal": 1, "tumour": 1}
    assert labels["ACC2"] == {"abnormal": 0}
    assert sequences_arg(" T2, FLAIR ,,DWI") == ("T2", "FLAIR", "DWI")
