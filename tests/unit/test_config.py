from __future__ import annotations

from pathlib import Path

import pytest

from dicom_node.config import AllowedCaller, Destination, load_settings
from dicom_node.errors import ConfigError


def test_precedence_toml_env_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "node.toml"
    config.write_text('ae_title = "FROMTOML"\nport = 1111\nquiet_period = 3.5\n')
    monkeypatch.setenv("DICOM_NODE_PORT", "2222")
    settings = load_settings(config, ae_title="FROMFLAG", port=None)
    assert settings.ae_title == "FROMFLAG"  # flag beats TOML
    assert settings.port == 2222  # environment beats TOML
    assert settings.quiet_period == 3.5  # TOML beats default


def test_lists_parse_from_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DICOM_NODE_ALLOW", '["SCANNER1@10.0.0.5", "PACS"]')
    settings = load_settings(destinations=["PACS@pacs.local:104"])
    assert settings.allow == [
        AllowedCaller(ae_title="SCANNER1", host="10.0.0.5"),
        AllowedCaller(ae_title="PACS"),
    ]
    assert settings.destinations == [Destination(ae_title="PACS", host="pacs.local", port=104)]


def test_comma_separated_environment_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DICOM_NODE_ALLOW", "SCANNER1@10.0.0.5, PACS")
    monkeypatch.setenv("DICOM_NODE_DESTINATIONS", "PACS@pacs.local:104")
    settings = load_settings()
    assert [str(caller) for caller in settings.allow] == ["SCANNER1@10.0.0.5", "PACS"]
    assert [str(dest) for dest in settings.destinations] == ["PACS@pacs.local:104"]


def test_bad_environment_list_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DICOM_NODE_DESTINATIONS", "PACS@nohost")
    with pytest.raises(ConfigError, match="destinations"):
        load_settings()


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"port": 70000}, "port"),
        ({"ae_title": "THIS_AE_TITLE_IS_TOO_LONG"}, "ae_title"),
        ({"destinations": ["nohostport"]}, "destinations"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_value_names_the_setting(overrides: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigError, match=setting):
        load_settings(**overrides)


def test_missing_config_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml")


def test_shipped_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "node.toml.example"
    settings = load_settings(example)
    assert settings.destinations == [Destination(ae_title="PACS", host="pacs.example", port=104)]
    assert AllowedCaller(ae_title="MR_SCANNER1", host="10.1.2.3") in settings.allow
    assert settings.allow_any is False
