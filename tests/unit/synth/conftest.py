"""Fixtures for the synthetic-data tests: small studies generated once per session."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from training.synth import SEQUENCES, SyntheticStudy, generate_study

ALL_SEQUENCES = tuple(s for s in SEQUENCES if s != "LOCALIZER")


@pytest.fixture(scope="session")
def small_study() -> Callable[..., SyntheticStudy]:
    """Factory of small studies, memoised on its arguments."""
    cache: dict[tuple[object, ...], SyntheticStudy] = {}

    def make(
        seed: int, site: str, findings: dict[str, bool] | None = None, size: str = "small"
    ) -> SyntheticStudy:
        key = (seed, site, tuple(sorted((findings or {}).items())), size)
        if key not in cache:
            cache[key] = generate_study(
                seed,
                site,
                findings=findings,
                size=size,
                sequences=ALL_SEQUENCES,  # type: ignore[arg-type]
            )
        return cache[key]

    return make
