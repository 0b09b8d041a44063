"""The association gate: calling-AE allow-list (optionally host-pinned), called AE, allow_any."""

from __future__ import annotations

from dicom_node.config import AllowedCaller
from dicom_node.scp.gate import (
    REJECT_CALLED_AE,
    REJECT_CALLING_AE,
    AssociationGate,
)


def _gate(*allow: str, allow_any: bool = False) -> AssociationGate:
    return AssociationGate(
        ae_title="NEUROTRIAGE",
        allow=[AllowedCaller.parse(text) for text in allow],
        allow_any=allow_any,
    )


def test_allow_list_is_on_by_default_and_rejects_unknown_callers() -> None:
    rejection = _gate().check("SCANNER", "NEUROTRIAGE", "10.0.0.5")
    assert rejection is not None
    assert (rejection.result, rejection.source, rejection.reason) == REJECT_CALLING_AE
    assert "SCANNER" in rejection.why


def test_listed_caller_is_accepted_from_any_host_and_padding_is_ignored() -> None:
    gate = _gate("SCANNER")
    assert gate.check("SCANNER         ", "NEUROTRIAGE     ", "10.0.0.5") is None
    assert gate.check("scanner", "NEUROTRIAGE", "10.0.0.5") is not None  # AE titles are exact


def test_host_pinned_caller_only_from_its_host() -> None:
    gate = _gate("SCANNER@10.0.0.5", "PACS@localhost")
    assert gate.check("SCANNER", "NEUROTRIAGE", "10.0.0.5") is None
    assert gate.check("SCANNER", "NEUROTRIAGE", "::ffff:10.0.0.5") is None
    wrong_host = gate.check("SCANNER", "NEUROTRIAGE", "10.0.0.6")
    assert wrong_host is not None and "10.0.0.6" in wrong_host.why
    assert gate.check("PACS", "NEUROTRIAGE", "127.0.0.1") is None


def test_same_ae_listed_twice_with_different_hosts() -> None:
    gate = _gate("SCANNER@10.0.0.5", "SCANNER@10.0.0.7")
    assert gate.check("SCANNER", "NEUROTRIAGE", "10.0.0.7") is None
    assert gate.check("SCANNER", "NEUROTRIAGE", "10.0.0.8") is not None


def test_called_ae_must_be_ours_even_with_allow_any() -> None:
    rejection = _gate(allow_any=True).check("ANYONE", "OTHERNODE", "10.0.0.5")
    assert rejection is not None
    assert (rejection.result, rejection.source, rejection.reason) == REJECT_CALLED_AE
    assert _gate(allow_any=True).check("ANYONE", "NEUROTRIAGE", "10.0.0.5") is None
