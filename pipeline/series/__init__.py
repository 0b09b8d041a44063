"""Series identification: headers -> sequence class (with reasons) -> best series per class.

Public API::

    from pipeline.series import SequenceClass, classify_series, select_series, StudySelection
"""

from __future__ import annotations

from pipeline.series.classes import SequenceClass
from pipeline.series.classify import Classification, classify_series, classify_study
from pipeline.series.headers import SeriesHeader, header_from_datasets
from pipeline.series.select import SelectedSeries, SeriesEntry, StudySelection, select_series

__all__ = [
    "Classification",
    "SelectedSeries",
    "SequenceClass",
    "SeriesEntry",
    "SeriesHeader",
    "StudySelection",
    "classify_series",
    "classify_study",
    "header_from_datasets",
    "select_series",
]
