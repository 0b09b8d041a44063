"""Fixtures for the series tests: the header table and a dataset builder."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import MRImageStorage, generate_uid

from pipeline.dicom_fixtures import PLANES
from pipeline.series.headers import vendor_of

CASES_FILE = Path(__file__).parents[2] / "data" / "series_headers" / "cases.py"

_PRIVATE = {
    "GE": ((0x0043, 0x0010), "GEMS_PARM_01", (0x0043, 0x1039), "IS"),
    "SIEMENS": ((0x0019, 0x0010), "SIEMENS MR HEADER", (0x0019, 0x100C), "IS"),
    "PHILIPS": ((0x2001, 0x0010), "Philips Imaging DD 001", (0x2001, 0x1003), "FL"),
}


def load_cases_module() -> ModuleType:
    """The header table module (tests/data/series_headers/cases.py)."""
    name = "series_header_cases"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, CASES_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def make_series_from_attrs(attrs: dict[str, Any]) -> list[Dataset]:
    """Header-only datasets of one series from a table case's attributes."""
    attrs = dict(attrs)
    planes = attrs.pop("_planes", None)
    b_values = attrs.pop("_b", None)
    private_b = attrs.pop("_private_b", None)
    count = attrs.pop("_n", 2)
    for values in (planes, b_values, private_b):
        if values:
            count = len(values)
    series_uid, study_uid = generate_uid(), generate_uid()
    vendor = vendor_of(str(attrs.get("Manufacturer", "")))
    out = []
    for i in range(count):
        ds = Dataset()
        ds.SOPClassUID = MRImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.Modality = "MR"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = 1
        ds.InstanceNumber = i + 1
        direction = PLANES[planes[i] if planes else "axial"]
        ds.ImageOrientationPatient = [float(v) for v in (*direction[:, 0], *direction[:, 1])]
        position = np.array([-100.0, -100.0, -50.0]) + (0 if b_values or private_b else i * 5.0)
        ds.ImagePositionPatient = [float(v) for v in position]
        ds.PixelSpacing = [1.0, 1.0]
        ds.Rows = ds.Columns = 64
        for keyword, value in attrs.items():
            setattr(ds, keyword, value)
        if b_values is not None and b_values[i] is not None:
            ds.DiffusionBValue = float(b_values[i])
        if private_b is not None:
            creator_tag, creator, tag, vr = _PRIVATE[vendor]
            ds.add_new(creator_tag, "LO", creator)
            value = private_b[i]
            ds.add_new(tag, vr, [int(value), 8, 0, 0] if vendor == "GE" else value)
        out.append(ds)
    return out


@pytest.fixture(scope="session")
def header_cases() -> list[Any]:
    """All cases of the header table."""
    cases: list[Any] = load_cases_module().CASES
    return cases


@pytest.fixture(scope="session")
def build_series() -> Callable[[dict[str, Any]], list[Dataset]]:
    """Builds header-only datasets of one series from a table case's attributes."""
    return make_series_from_attrs
