"""Fixtures for the synthetic-data tests: small studies generated once per session."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from training.synth import SEQUENCES, SyntheticStudy, generate_study

ALL_SEQUENCES = tuple(s for s in SEQUENCES if s != "LOCALIZER")


@pytest.fixture(scope="session")
def small_study() -> Callable[..., SyntheticStudy]:
    """Factory of small studies with every sequence, memoised on its arguments."""
    cache: dict[tuple[object, ...], SyntheticStudy] = {}

    def make(
        seed: int,
        site: str,
        findings: dict[str, bool] | None = None,
        size: str = "small",
        only: tuple[str, ...] | None = None,
    ) -> SyntheticStudy:
        """A study with every sequence (only those of ``only`` rendered, when given)."""
        key = (seed, site, tuple(sorted((findings or {}).items())), size, only)
        if key not in cache:
            cache[key] = generate_study(
                seed,
                site,
                findings=findings,
                size=size,  # type: ignore[arg-type]
                sequences=ALL_SEQUENCES,
                restrict_to=only,
            )
        return cache[key]

    return make
