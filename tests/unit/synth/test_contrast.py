"""Every site's protocols give their sequence's textbook tissue contrast."""

from __future__ import annotations

import pytest

from training.synth.contrast import TISSUES, tissue_signal
from training.synth.sites import SITE_PROFILES, Protocol, Site


def _protocols(sequence: str) -> list[tuple[Site, Protocol]]:
    return [(site, p) for site in SITE_PROFILES.values() for p in site.protocols.get(sequence, ())]


def _cases(sequence: str) -> list[object]:
    """One pytest case per (site, protocol) of ``sequence``, named after both."""
    return [pytest.param(s, p, id=f"{s.name}:{p.description}") for s, p in _protocols(sequence)]


def _signal(tissue: str, site: Site, protocol: Protocol) -> float:
    return tissue_signal(TISSUES[tissue], protocol.params, site.field_t)


@pytest.mark.parametrize(("site", "protocol"), _cases("FLAIR"))
def test_flair_nulls_csf_and_shows_oedema(site: Site, protocol: Protocol) -> None:
    wm = _signal("wm", site, protocol)
    assert _signal("csf", site, protocol) < 0.5 * wm  # fluid attenuated
    # 3D FLAIR's grey/white contrast is low (TI close to grey matter's null too)
    assert _signal("gm", site, protocol) > 0.95 * wm
    for lesion in ("oedema", "plaque", "infarct_core"):
        assert _signal(lesion, site, protocol) > 1.2 * wm, lesion


@pytest.mark.parametrize(("site", "protocol"), _cases("T2"))
def test_t2_shows_bright_csf(site: Site, protocol: Protocol) -> None:
    csf = _signal("csf", site, protocol)
    assert csf > 1.5 * _signal("gm", site, protocol)
    assert csf > _signal("oedema", site, protocol)
    assert _signal("gm", site, protocol) > _signal("wm", site, protocol)


def test_3d_flair_weights_t2_by_its_equivalent_echo_time() -> None:
    view = next(p for s, p in _protocols("FLAIR") if p.acq_type == "3D" and s.name == "philips_c")
    assert view.params.te > 300  # the nominal TE written to the header
    assert view.params.contrast_te < 0.5 * view.params.te
