"""Durable storage: UID-checked paths, atomic replace, free-disk watermark, clean-up."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dicom_node.errors import InvalidInstanceError, OutOfResourcesError, StorageError
from dicom_node.storage import (
    DurableStore,
    check_free_disk,
    clean_incoming,
    free_disk_mb,
    instance_path,
    iter_stored_files,
)

STUDY, SERIES, SOP = "1.2.3", "1.2.3.4", "1.2.3.4.5"


def test_instance_path_layout(tmp_path: Path) -> None:
    assert instance_path(tmp_path, STUDY, SERIES, SOP) == tmp_path / STUDY / SERIES / f"{SOP}.dcm"


@pytest.mark.parametrize("bad", ["", "../../etc", "1.2.a", "1." + "2" * 70, "1/2"])
def test_invalid_uids_never_reach_the_filesystem(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidInstanceError, match="StudyInstanceUID"):
        instance_path(tmp_path, bad, SERIES, SOP)


def test_write_is_atomic_and_idempotent(tmp_path: Path) -> None:
    store = DurableStore(tmp_path / "storage")
    store.prepare()
    first, size = store.write(b"first version", STUDY, SERIES, SOP)
    assert first.read_bytes() == b"first version" and size == 13
    inode = first.stat().st_ino
    again, _ = store.write(b"second", STUDY, SERIES, SOP)
    assert again == first
    assert first.read_bytes() == b"second"
    assert first.stat().st_ino != inode  # replaced by rename, never rewritten in place
    assert list(iter_stored_files(store.storage_dir)) == [first]
    assert not any(store.incoming.iterdir())


def test_commit_moves_a_received_temp_file(tmp_path: Path) -> None:
    store = DurableStore(tmp_path / "storage")
    store.prepare()
    temp = store.incoming / "rx.dcm"
    temp.write_bytes(b"payload")
    final, size = store.commit(temp, STUDY, SERIES, SOP)
    assert not temp.exists()
    assert final.read_bytes() == b"payload" and size == 7


def test_commit_failure_is_a_storage_error(tmp_path: Path) -> None:
    store = DurableStore(tmp_path / "storage")
    store.prepare()
    with pytest.raises(StorageError, match=SOP):
        store.commit(store.incoming / "missing.dcm", STUDY, SERIES, SOP)


def test_free_disk_and_watermark(tmp_path: Path) -> None:
    stats = os.statvfs(tmp_path)
    expected = stats.f_bavail * stats.f_frsize / 2**20
    assert free_disk_mb(tmp_path / "not" / "yet") == pytest.approx(expected, rel=0.01)
    assert check_free_disk(tmp_path, 0) > 0
    with pytest.raises(OutOfResourcesError, match="min_free_disk_mb"):
        check_free_disk(tmp_path, expected * 10 + 1)


def test_clean_incoming_removes_partial_files(tmp_path: Path) -> None:
    store = DurableStore(tmp_path)
    store.prepare()
    (store.incoming / "a.part").write_bytes(b"x")
    (store.incoming / "b.dcm").write_bytes(b"y")
    assert clean_incoming(tmp_path) == 0  # recent: may still be being received
    assert clean_incoming(tmp_path, older_than=0) == 2
    assert not any(store.incoming.iterdir())


def test_commit_recreates_directories_removed_behind_its_back(tmp_path: Path) -> None:
    store = DurableStore(tmp_path / "storage")
    store.prepare()
    store.write(b"one", STUDY, SERIES, SOP)
    shutil.rmtree(tmp_path / "storage" / STUDY)
    final, _ = store.write(b"two", STUDY, SERIES, "1.2.3.4.6")
    assert final.read_bytes() == b"two"
