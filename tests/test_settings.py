from pathlib import Path

import pytest

from datatrust.errors import SettingsError
from datatrust.settings import GatewaySettings, NodeSettings, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_environment_beats_toml_and_toml_beats_default(tmp_path):
    toml = write(tmp_path, 'node_id = "health"\nagency = "NHS"\nport = 9001\n')
    settings = load_settings(NodeSettings, toml_path=toml, environ={"DATATRUST_PORT": "9002"})
    assert (settings.port, settings.host, settings.node_id) == (9002, "127.0.0.1", "health")
    assert load_settings(NodeSettings, toml_path=toml, environ={}).port == 9001


def test_explicit_overrides_beat_the_environment(tmp_path):
    toml = write(tmp_path, 'node_id = "health"\nagency = "NHS"\n')
    settings = load_settings(
        NodeSettings, toml_path=toml, environ={"DATATRUST_PORT": "9002"}, port=9003
    )
    assert settings.port == 9003


def test_an_unknown_key_in_the_toml_file_is_refused_by_name(tmp_path):
    toml = write(tmp_path, 'node_id = "health"\nagency = "NHS"\nprot = 9001\n')
    with pytest.raises(SettingsError, match=r"unknown setting 'prot' in .*node\.toml"):
        load_settings(NodeSettings, toml_path=toml, environ={})


def test_an_unknown_environment_variable_with_our_prefix_is_refused_by_name():
    expected = "unknown setting in environment variable DATATRUST_PROT"
    with pytest.raises(SettingsError, match=expected):
        load_settings(GatewaySettings, environ={"DATATRUST_PROT": "1"})


def test_a_value_of_the_wrong_type_names_the_setting():
    with pytest.raises(SettingsError, match=r"invalid GatewaySettings: port: .*integer"):
        load_settings(GatewaySettings, environ={"DATATRUST_PORT": "eighty"})


def test_the_default_database_is_a_sqlite_file_in_the_data_directory(tmp_path):
    settings = load_settings(
        NodeSettings, environ={}, node_id="council", agency="CCC", data_dir=tmp_path
    )
    assert settings.effective_database_url == f"sqlite:///{tmp_path.resolve()}/council.db"


def test_a_database_password_file_is_added_to_the_url_and_masked_in_repr(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    settings = load_settings(
        NodeSettings,
        environ={},
        node_id="council",
        agency="CCC",
        database_url="postgresql+psycopg://datatrust@db:5432/council",
        database_password_file=secret,
    )
    assert (
        settings.effective_database_url == "postgresql+psycopg://datatrust:s3cret@db:5432/council"
    )
    assert "s3cret" not in repr(settings)


def test_a_missing_settings_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match=r"settings file .*nope\.toml does not exist"):
        load_settings(GatewaySettings, toml_path=tmp_path / "nope.toml", environ={})
