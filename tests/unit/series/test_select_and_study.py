"""Study-level classification (contrast by acquisition order) and best-series selection."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from pipeline.dicom_fixtures import PLANES, make_enhanced_mr, make_mr_series
from pipeline.series import SequenceClass, classify_series, select_series
from pipeline.series.headers import header_from_datasets, private_b_value

STUDY = generate_uid()
T1_SE = {"ScanningSequence": "SE", "EchoTime": 10, "RepetitionTime": 550, "SequenceName": "*se2d1"}
MPRAGE = {
    "ScanningSequence": ["GR", "IR"],
    "EchoTime": 3,
    "RepetitionTime": 2300,
    "InversionTime": 900,
    "MRAcquisitionType": "3D",
    "SequenceName": "*tfl3d1_16ns",
}
T2 = {"ScanningSequence": "SE", "EchoTime": 100, "RepetitionTime": 5000}


def series(
    number: int,
    description: str,
    header: dict[str, Any],
    *,
    time: str = "100000",
    slices: int = 4,
    plane: str = "axial",
    thickness: float = 5.0,
    **extra: Any,
) -> list[Dataset]:
    attrs = {
        "SeriesDescription": description,
        "SeriesNumber": number,
        "AcquisitionTime": time,
        "Manufacturer": "SIEMENS",
        **header,
        **extra,
    }
    data = np.zeros((slices, 8, 8), np.uint16)
    return make_mr_series(
        data, (1.0, 1.0, thickness), direction=PLANES[plane], header=attrs, study_uid=STUDY
    )


def chosen_number(selection: Any, sequence: SequenceClass) -> int | None:
    chosen = selection.get(sequence)
    return None if chosen is None else chosen.entry.header.series_number


def test_repeat_of_t1_protocol_after_pre_is_post_contrast() -> None:
    pre = series(3, "Ax T1", T1_SE, time="101000")
    post = series(7, "Ax T1", T1_SE, time="103000")
    other_plane = series(8, "Sag T1", T1_SE, time="103500", plane="sagittal")
    selection = select_series([*pre, *post, *other_plane])
    classes = {e.header.series_number: e.classification for e in selection.series}
    assert classes[3].sequence is SequenceClass.T1
    assert classes[7].sequence is SequenceClass.T1C
    assert "repeats the earlier T1 protocol of series 3" in classes[7].reason
    # a different plane is not a repeat of the axial T1
    assert classes[8].sequence is SequenceClass.T1
    assert chosen_number(selection, SequenceClass.T1C) == 7
    assert chosen_number(selection, SequenceClass.T1) == 3


def test_motion_repeat_of_t1_stays_t1() -> None:
    first = series(3, "Ax T1", T1_SE, time="101000")
    again = series(4, "Ax T1 repeat", T1_SE, time="101500")
    classes = {
        e.header.series_number: e.classification for e in select_series([*first, *again]).series
    }
    assert classes[4].sequence is SequenceClass.T1


def test_t1_after_a_series_recording_contrast_is_post() -> None:
    first_post = series(5, "t1_mprage_sag", MPRAGE, time="102000", ContrastBolusAgent="Gadovist")
    later = series(6, "t1_tse_cor", T1_SE, time="102500", plane="coronal")
    earlier = series(2, "t1_tse_cor_pre", T1_SE, time="100500", plane="coronal")
    selection = select_series([*first_post, *later, *earlier])
    classes = {e.header.series_number: e.classification for e in selection.series}
    assert classes[5].sequence is SequenceClass.T1C
    assert "ContrastBolusAgent" in classes[5].reason
    assert classes[6].sequence is SequenceClass.T1C
    assert "which records contrast" in classes[6].reason
    assert classes[2].sequence is SequenceClass.T1


def test_selection_prefers_original_axial_thin_and_latest_post() -> None:
    items = [
        *series(2, "t2_tse_sag", T2, plane="sagittal", thickness=3.0),
        *series(3, "t2_tse_tra", T2, thickness=5.0),
        *series(4, "t2_tse_tra_thin", T2, thickness=3.0, slices=6),
        *series(
            5,
            "t2_tse_tra_MPR",
            T2,
            thickness=1.0,
            slices=8,
            ImageType=["DERIVED", "PRIMARY", "MPR"],
        ),
        *series(10, "t1_mprage_sag_post", MPRAGE, time="110000", plane="sagittal", thickness=1.0),
        *series(11, "t1_tse_tra_post", T1_SE, time="111500"),
        *series(12, "t1_tse_cor_post", T1_SE, time="112000", plane="coronal"),
    ]
    shuffled = list(items)
    random.Random(4).shuffle(shuffled)
    selection = select_series(items)
    again = select_series(shuffled)
    assert chosen_number(selection, SequenceClass.T2) == 4
    explanation = selection.chosen[SequenceClass.T2].explanation
    assert "preferred over" in explanation and "t2_tse_sag" in explanation
    # axial / 3D isotropic beat coronal; among those the latest post-contrast wins
    assert chosen_number(selection, SequenceClass.T1C) == 11
    # deterministic: input order does not matter
    assert {k: v.series_uid for k, v in selection.chosen.items()} == {
        k: v.series_uid for k, v in again.chosen.items()
    }
    # every series is reported, chosen or not
    assert len(selection.series) == 7
    assert (
        selection.to_dict()["chosen"]["T2"]["series_uid"]
        == selection.chosen[SequenceClass.T2].series_uid
    )


def test_swi_selection_skips_phase_and_prefers_processed() -> None:
    swi = {
        "ScanningSequence": "GR",
        "EchoTime": 20,
        "RepetitionTime": 27,
        "SequenceName": "*swi3d1r",
    }
    items = [
        *series(20, "Mag_Images", swi, ImageType=["ORIGINAL", "PRIMARY", "M", "ND"]),
        *series(21, "Pha_Images", swi, ImageType=["ORIGINAL", "PRIMARY", "P", "ND"]),
        *series(22, "mIP_Images(SW)", swi, ImageType=["DERIVED", "PRIMARY", "MNIP", "ND"]),
        *series(23, "SWI_Images", swi, ImageType=["DERIVED", "PRIMARY", "SWI", "ND"]),
    ]
    selection = select_series(items)
    assert all(e.classification.sequence is SequenceClass.SWI for e in selection.series)
    assert chosen_number(selection, SequenceClass.SWI) == 23
    only_phase = select_series(series(21, "Pha_Images", swi, ImageType=["ORIGINAL", "P"]))
    assert selection.get(SequenceClass.SWI) is not None
    assert only_phase.get(SequenceClass.SWI) is None


def test_multiplanar_localizer_and_reason_evidence() -> None:
    loc = []
    uid = generate_uid()
    for plane in ("axial", "sagittal", "coronal"):
        part = series(
            1, "", {"ScanningSequence": "GR", "EchoTime": 4, "RepetitionTime": 8}, plane=plane
        )
        for ds in part:
            ds.SeriesInstanceUID = uid
        loc.extend(part)
    result = classify_series(loc)
    assert result.sequence is SequenceClass.LOCALIZER
    assert "3 planes" in result.reason


def test_enhanced_mr_header_and_classification() -> None:
    data = np.zeros((5, 8, 8), np.uint16)
    flair = make_enhanced_mr(
        data,
        header={"SeriesDescription": "", "EchoPulseSequence": "SPIN", "MRAcquisitionType": "3D"},
        echo_time=330,
        repetition_time=4800,
        inversion_time=1650,
    )
    header = header_from_datasets([flair])
    assert header.enhanced and header.n_frames == 5
    assert header.scanning_sequence == ("SE", "IR")
    assert header.inversion_time == 1650 and header.echo_time == 330
    assert classify_series([flair]).sequence is SequenceClass.FLAIR


def test_private_b_values_parsed_from_un_bytes_and_ge_offset() -> None:
    ds = Dataset()
    ds.add(DataElement((0x0043, 0x1039), "UN", b"1000001000\\8\\0\\0 "))
    assert private_b_value(ds, "GE") == 1000.0
    ds = Dataset()
    ds.add(DataElement((0x2001, 0x1003), "UN", np.float32(800.0).tobytes()))
    assert private_b_value(ds, "PHILIPS") == 800.0
    ds = Dataset()
    ds.add(DataElement((0x0019, 0x100C), "IS", "500"))
    assert private_b_value(ds, "SIEMENS") == 500.0
    assert private_b_value(ds, "GE") is None


def test_series_of_two_studies_are_refused() -> None:
    from dicom_node.errors import SeriesError

    one = series(3, "Ax T1", T1_SE)
    other = make_mr_series(np.zeros((2, 8, 8), np.uint16), header={"SeriesDescription": "T2"})
    with pytest.raises(SeriesError, match="2 studies"):
        select_series([*one, *other])
