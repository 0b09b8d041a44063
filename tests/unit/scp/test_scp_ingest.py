"""Registration: idempotency, re-opening a dispatched study, cross-process races, reconcile."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dicom_node.config import NodeSettings
from dicom_node.ingest import REOPEN_DETAIL, HeaderError, InstanceHeader, Registrar, read_header
from dicom_node.registry import (
    Instance,
    Series,
    Study,
    StudyState,
    StudyTransition,
    create_registry_engine,
)
from dicom_node.registry.transitions import transition
from dicom_node.storage import DurableStore, reconcile

MR = "1.2.840.10008.5.1.4.1.1.4"
EXPLICIT = "1.2.840.10008.1.2.1"


def _header(study: str, series: str, sop: str | None = None) -> InstanceHeader:
    return InstanceHeader(
        study_uid=study,
        series_uid=series,
        sop_instance_uid=sop or generate_uid(),
        sop_class_uid=MR,
        transfer_syntax_uid=EXPLICIT,
        modality="MR",
        series_number=3,
        series_description="AX T2",
        study_description="MRI BRAIN",
        body_part="BRAIN",
    )


def test_register_creates_rows_and_is_idempotent(registry_engine: Engine) -> None:
    registrar = Registrar(registry_engine)
    header = _header(generate_uid(), generate_uid())
    assert registrar.register(header, Path("/s/a.dcm"), 100, "SCANNER") is True
    assert registrar.register(header, Path("/s/b.dcm"), 120, "OTHER") is False
    with Session(registry_engine) as session:
        study = session.scalars(select(Study)).one()
        series = session.scalars(select(Series)).one()
        instance = session.scalars(select(Instance)).one()
    assert study.instance_count == 1 and series.instance_count == 1
    assert study.modality == "MR" and study.body_part == "BRAIN"
    assert series.series_description == "AX T2" and series.series_number == 3
    assert (instance.path, instance.size_bytes, instance.calling_ae) == ("/s/b.dcm", 120, "OTHER")
    assert study.state is StudyState.RECEIVING


def test_new_instance_reopens_a_dispatched_study(registry_engine: Engine) -> None:
    registrar = Registrar(registry_engine)
    study_uid, series_uid = generate_uid(), generate_uid()
    registrar.register(_header(study_uid, series_uid), Path("/s/1.dcm"), 1, None)
    with Session(registry_engine) as session, session.begin():
        study = session.scalars(select(Study)).one()
        transition(session, study, StudyState.COMPLETE, "quiet")
        transition(session, study, StudyState.QUEUED, "dispatched")
    registrar.register(_header(study_uid, series_uid), Path("/s/2.dcm"), 1, None)
    with Session(registry_engine) as session:
        study = session.scalars(select(Study)).one()
        moves = session.scalars(select(StudyTransition).order_by(StudyTransition.id)).all()
    assert study.state is StudyState.RECEIVING
    assert study.instance_count == 2
    assert (moves[-1].from_state, moves[-1].to_state) == (StudyState.QUEUED, StudyState.RECEIVING)
    assert moves[-1].detail == REOPEN_DETAIL


def _register_many(url: str, study: str, series: list[str], count: int, seed: int) -> None:
    engine = create_registry_engine(url)
    registrar = Registrar(engine)
    for index in range(count):
        header = _header(study, series[(index + seed) % len(series)])
        registrar.register(header, Path(f"/s/{seed}-{index}.dcm"), 1, None)
    engine.dispose()


@pytest.mark.slow
def test_concurrent_processes_register_the_same_new_study(
    registry_url: str, registry_engine: Engine
) -> None:
    study, series = generate_uid(), [generate_uid() for _ in range(3)]
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_register_many, args=(registry_url, study, series, 25, seed))
        for seed in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    with Session(registry_engine) as session:
        studies = session.scalars(select(Study)).all()
        all_series = session.scalars(select(Series)).all()
        instances = session.scalars(select(Instance)).all()
    assert len(studies) == 1 and studies[0].instance_count == 100
    assert len(all_series) == 3 and sum(s.instance_count for s in all_series) == 100
    assert len(instances) == 100


def _mr_file(path: Path, **uids: str) -> Path:
    ds = dcmread(str(get_testdata_file("MR_small.dcm")))
    for keyword, value in uids.items():
        setattr(ds, keyword, value)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return path


def test_read_header(tmp_path: Path) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    header = read_header(
        _mr_file(
            tmp_path / "a.dcm", StudyInstanceUID=study, SeriesInstanceUID=series, SOPInstanceUID=sop
        )
    )
    assert (header.study_uid, header.series_uid, header.sop_instance_uid) == (study, series, sop)
    assert header.sop_class_uid == MR and header.transfer_syntax_uid == EXPLICIT
    assert header.modality == "MR"

    ds = dcmread(tmp_path / "a.dcm")
    del ds.StudyInstanceUID
    ds.save_as(tmp_path / "b.dcm")
    with pytest.raises(HeaderError, match="StudyInstanceUID is missing") as missing:
        read_header(tmp_path / "b.dcm")
    assert missing.value.missing_uid and missing.value.uids["SOPInstanceUID"] == sop

    (tmp_path / "c.dcm").write_bytes(b"not dicom at all")
    with pytest.raises(HeaderError, match="does not parse") as garbage:
        read_header(tmp_path / "c.dcm")
    assert not garbage.value.missing_uid


def test_reconcile_registers_files_missing_from_the_registry(
    tmp_path: Path, registry_url: str
) -> None:
    settings = NodeSettings(data_dir=tmp_path / "node", database=registry_url)
    store = DurableStore(settings.storage_dir)
    store.prepare()
    study, series = generate_uid(), generate_uid()
    for _ in range(3):
        sop = generate_uid()
        data = _mr_file(
            tmp_path / "x.dcm", StudyInstanceUID=study, SeriesInstanceUID=series, SOPInstanceUID=sop
        ).read_bytes()
        store.write(data, study, series, sop)
    partial = store.incoming / "partial.dcm"
    partial.write_bytes(b"half")
    os.utime(partial, (time.time() - 3600, time.time() - 3600))
    assert reconcile(settings) == 3
    assert reconcile(settings) == 0
    assert not any(store.incoming.iterdir())
    engine = create_registry_engine(registry_url)
    with Session(engine) as session:
        assert session.scalars(select(Study)).one().instance_count == 3
    engine.dispose()


@pytest.mark.parametrize(
    "name",
    [
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "image_dfl.dcm",
    ],
)
def test_header_with_known_transfer_syntax_matches_full_read(name: str) -> None:
    path = Path(str(get_testdata_file(name)))
    syntax = str(dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
    assert read_header(path, transfer_syntax=syntax) == read_header(path)
