"""Table-driven accuracy of the classifier on >= 150 vendor-style series headers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from pipeline.series import classify_series

TARGET_ACCURACY = 0.97


def test_table_is_large_and_unique(header_cases: list[Any]) -> None:
    ids = [case.case_id for case in header_cases]
    assert len(ids) >= 150
    assert len(set(ids)) == len(ids)
    vendors = Counter(str(c.attrs.get("Manufacturer", "?")).split(" ")[0] for c in header_cases)
    assert vendors["SIEMENS"] >= 40 and vendors["GE"] >= 40 and vendors["Philips"] >= 30


def test_header_table_accuracy(
    header_cases: list[Any],
    build_series: Callable[[dict[str, Any]], list[Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    failures = []
    per_class: Counter[str] = Counter()
    per_class_ok: Counter[str] = Counter()
    for case in header_cases:
        result = classify_series(build_series(case.attrs))
        per_class[case.expected] += 1
        if result.sequence.value == case.expected:
            per_class_ok[case.expected] += 1
        else:
            failures.append(
                f"  {case.case_id}: expected {case.expected}, got "
                f"{result.sequence.value} ({result.reason})"
            )
    accuracy = 1 - len(failures) / len(header_cases)
    with capsys.disabled():
        print(
            f"\nseries header table: {len(header_cases) - len(failures)}/{len(header_cases)} "
            f"correct, accuracy {accuracy:.1%} (target {TARGET_ACCURACY:.0%})"
        )
        print(
            "  per class: "
            + ", ".join(f"{k} {per_class_ok[k]}/{v}" for k, v in sorted(per_class.items()))
        )
        for line in failures:
            print(line)
    assert accuracy >= TARGET_ACCURACY


@pytest.mark.parametrize(
    "variant",
    [str.upper, str.lower, lambda s: s.replace("_", " "), lambda s: s.replace(" ", "_")],
    ids=["upper", "lower", "underscores-to-spaces", "spaces-to-underscores"],
)
def test_case_and_separator_invariance(
    header_cases: list[Any],
    build_series: Callable[[dict[str, Any]], list[Any]],
    variant: Callable[[str], str],
) -> None:
    """Upper/lower case and separator changes of the description never change the class."""
    changed = []
    for case in header_cases:
        description = str(case.attrs.get("SeriesDescription", ""))
        if not description:
            continue
        before = classify_series(build_series(case.attrs)).sequence
        after = classify_series(
            build_series({**case.attrs, "SeriesDescription": variant(description)})
        ).sequence
        if before is not after:
            changed.append(f"{case.case_id}: {description!r} -> {variant(description)!r}")
    assert not changed, "\n".join(changed)
