"""Loading the TOML configuration: defaults, ``${VAR}`` expansion, overrides and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from adapter.config import Settings, SystemSettings, load_settings
from adapter.errors import ConfigError
from tests.conftest import ROOT

ONTVANGER = '\n[[stuf.ontvangers]]\norganisatie = "00000001002564440000"\napplicatie = "ZAAKSYSTEEM"\n'


def write(tmp_path: Path, text: str | bytes, name: str = "config.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


# -- defaults --------------------------------------------------------------------------------------


def test_defaults_of_a_minimal_file(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, ONTVANGER))
    assert s.inbound.max_body_bytes == 50 * 1024 * 1024
    assert s.inbound.max_depth == 64
    assert s.inbound.log_rejected is True
    assert (s.server.host, s.server.port) == ("127.0.0.1", 8080)
    assert s.server.environment == "development"
    assert s.server.log_level == "INFO"
    assert s.store.url == "sqlite:///loket-adapter.db"
    assert s.store.auto_migrate is True
    assert s.stuf.zenders == []
    assert s.stuf.ontvangers == [SystemSettings(organisatie="00000001002564440000", applicatie="ZAAKSYSTEEM")]
    assert s.stuf.ontvangers[0].administratie is None
    assert s.source == str(tmp_path / "config.toml")


def test_the_example_config_loads() -> None:
    s = load_settings(ROOT / "config.example.toml")
    assert s.inbound.max_body_bytes == 52428800
    assert s.store.url == "sqlite:///var/loket-adapter.db"
    assert [z.applicatie for z in s.stuf.zenders] == ["OLO"]


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, ONTVANGER))
    with pytest.raises(ValidationError):
        s.server.port = 1  # type: ignore[misc]


# -- ${VAR} expansion ------------------------------------------------------------------------------


def test_env_references_are_expanded_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOKET_T_PASSWORD", "s3cr3t")
    monkeypatch.setenv("LOKET_T_HOST", "db.example.org")
    monkeypatch.setenv("LOKET_T_PORT", "9090")
    monkeypatch.setenv("LOKET_T_OIN", "00000001234567890000")
    path = write(
        tmp_path,
        """
[server]
port = "${LOKET_T_PORT}"
[store]
url = "postgresql+psycopg://adapter:${LOKET_T_PASSWORD}@${LOKET_T_HOST}:5432/adapter"
[[stuf.ontvangers]]
organisatie = "${LOKET_T_OIN}"
applicatie = "ZAAKSYSTEEM"
""",
    )
    s = load_settings(path)
    assert s.store.url == "postgresql+psycopg://adapter:s3cr3t@db.example.org:5432/adapter"
    assert s.server.port == 9090  # a string from the environment still becomes the int the key needs
    assert s.stuf.ontvangers[0].organisatie == "00000001234567890000"


def test_expanded_values_are_not_expanded_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOKET_T_PASSWORD", "p${LOKET_T_UNSET}w")
    monkeypatch.delenv("LOKET_T_UNSET", raising=False)
    path = write(tmp_path, '[store]\nurl = "postgresql+psycopg://a:${LOKET_T_PASSWORD}@h/db"\n' + ONTVANGER)
    url = load_settings(path).store.url  # inside the user information: percent-encoded, and not expanded again
    assert url == "postgresql+psycopg://a:p%24%7BLOKET_T_UNSET%7Dw@h/db"
    assert make_url(url).password == "p${LOKET_T_UNSET}w"


def test_a_password_with_url_characters_cannot_change_the_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOKET_T_PASSWORD", "p@ss/w:rd%?#")
    path = write(
        tmp_path, '[store]\nurl = "postgresql+psycopg://adapter:${LOKET_T_PASSWORD}@db.example/ad"\n' + ONTVANGER
    )
    u = make_url(load_settings(path).store.url)
    assert (u.host, u.database, u.username, u.password) == ("db.example", "ad", "adapter", "p@ss/w:rd%?#")


def test_a_value_in_a_query_is_encoded_and_one_in_a_path_is_not() -> None:
    import os

    from adapter.envsubst import expand

    os.environ["LOKET_T_TOKEN"] = "a&b=c d"
    os.environ["LOKET_T_HOST"] = "zaken.example:8443"
    try:
        got, _ = expand({"u": "https://${LOKET_T_HOST}/api?token=${LOKET_T_TOKEN}#x"}, "f")
    finally:
        del os.environ["LOKET_T_TOKEN"], os.environ["LOKET_T_HOST"]
    assert got == {"u": "https://zaken.example:8443/api?token=a%26b%3Dc%20d#x"}


DEV_SECRET = """
[server]
environment = "{environment}"
[targets.zaaksysteem]
kind = "zgw"
auth = {{ client_id = "loket-adapter", secret = "${{LOKET_T_ZGW_SECRET:-change-me}}" }}
"""


def test_a_development_default_for_a_secret_is_used_in_development(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOKET_T_ZGW_SECRET", raising=False)
    s = load_settings(write(tmp_path, DEV_SECRET.format(environment="development") + ONTVANGER))
    assert s.targets["zaaksysteem"]["auth"]["secret"] == "change-me"
    s.require_env()  # allowed outside production
    monkeypatch.setenv("LOKET_T_ZGW_SECRET", "real")
    assert (
        load_settings(write(tmp_path, DEV_SECRET.format(environment="production") + ONTVANGER)).targets["zaaksysteem"][
            "auth"
        ]["secret"]
        == "real"
    )


def test_a_development_default_for_a_secret_is_refused_in_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOKET_T_ZGW_SECRET", raising=False)
    s = load_settings(write(tmp_path, DEV_SECRET.format(environment="production") + ONTVANGER))
    with pytest.raises(
        ConfigError,
        match=r"targets\.zaaksysteem\.auth\.secret: LOKET_T_ZGW_SECRET is not set, and its "
        r"development default may not be used with environment = \"production\"",
    ) as e:
        s.require_env()
    assert "change-me" not in str(e.value)


def test_a_non_secret_default_is_fine_in_production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOKET_T_PORT", raising=False)
    toml = '[server]\nenvironment = "production"\nport = "${LOKET_T_PORT:-9191}"\n' + ONTVANGER
    s = load_settings(write(tmp_path, toml))
    assert s.server.port == 9191
    s.require_env()


def test_read_only_loading_defers_unset_target_variables_to_the_commands_that_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOKET_T_ZGW_SECRET", raising=False)
    toml = DEV_SECRET.format(environment="development").replace(
        "${LOKET_T_ZGW_SECRET:-change-me}", "${LOKET_T_ZGW_SECRET}"
    )
    path = write(tmp_path, toml + ONTVANGER)
    with pytest.raises(ConfigError, match="LOKET_T_ZGW_SECRET is not set"):
        load_settings(path)  # strict: as before
    s = load_settings(path, strict_env=False)
    with pytest.raises(
        ConfigError, match=r"targets\.zaaksysteem\.auth\.secret: environment variable LOKET_T_ZGW_SECRET is not set"
    ):
        s.require_env()
    store_var = '[store]\nurl = "sqlite:///${LOKET_T_UNSET_DB}"\n' + ONTVANGER  # the store is always needed
    monkeypatch.delenv("LOKET_T_UNSET_DB", raising=False)
    with pytest.raises(ConfigError, match=r"store\.url: environment variable LOKET_T_UNSET_DB is not set"):
        load_settings(write(tmp_path, store_var), strict_env=False)


def test_text_that_only_looks_like_a_reference_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\nurl = "sqlite:///$HOME/{x}/$-{y}.db"\n' + ONTVANGER)
    assert load_settings(path).store.url == "sqlite:///$HOME/{x}/$-{y}.db"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[store]\nurl = "sqlite:///${LOKET_T_UNSET}.db"\n' + ONTVANGER, "store.url"),
        (
            '[[stuf.ontvangers]]\norganisatie = "x"\napplicatie = "${LOKET_T_UNSET}"\n',
            "stuf.ontvangers[0].applicatie",
        ),
    ],
)
def test_unset_variable_names_key_and_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, key: str
) -> None:
    monkeypatch.delenv("LOKET_T_UNSET", raising=False)
    path = write(tmp_path, text)
    assert config_error(path) == f"{path}: {key}: environment variable LOKET_T_UNSET is not set"


# -- one-line errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server]\nprot = 1\n" + ONTVANGER, "server.prot: unknown key"),
        (ONTVANGER + 'colour = "blue"\n', "stuf.ontvangers.0.colour: unknown key"),
        ("[servr]\nport = 1\n" + ONTVANGER, "servr: unknown key"),
        ("[server]\nport = 0\n" + ONTVANGER, "server.port: Input should be greater than or equal to 1"),
        ('[server]\nenvironment = "staging"\n' + ONTVANGER, "server.environment: Input should be 'development'"),
        ("[inbound]\nmax_body_bytes = 10\n" + ONTVANGER, "inbound.max_body_bytes: Input should be greater"),
        ("[server]\n", "stuf: Field required"),
        ('[[stuf.ontvangers]]\norganisatie = "x"\n', "stuf.ontvangers.0.applicatie: Field required"),
        ("[stuf]\nontvangers = []\n", "stuf.ontvangers: List should have at least 1 item"),
        ('[store]\nurl = "adapter.db"\n' + ONTVANGER, "store.url: not a database URL"),
        ('[store]\nurl = "mysql://db/x"\n' + ONTVANGER, "store.url: unsupported database 'mysql'"),
        ('[store]\nurl = "sqlite://"\n' + ONTVANGER, "store.url: an in-memory SQLite store loses"),
        ("[server\n", "not valid TOML: "),
        ("[server]\nport = 1\nport = 2\n", "not valid TOML: "),
    ],
)
def test_errors_are_one_line_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    message = config_error(path)
    assert message.startswith(f"{path}: {expected}"), message


def test_unknown_keys_are_reported_before_other_errors(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = "x"\nprot = 1\n')
    assert config_error(path) == f"{path}: server.prot: unknown key (and 2 more)"


def test_toml_errors_carry_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nhost = "a"\nport = = 1\n')
    assert "line 3" in config_error(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, b"[server]\nhost = '\xff'\n")
    assert "not valid TOML" in config_error(path)


def test_missing_file(tmp_path: Path) -> None:
    assert config_error(tmp_path / "nope.toml") == f"{tmp_path / 'nope.toml'}: cannot read: No such file or directory"


def test_a_directory_is_not_a_config(tmp_path: Path) -> None:
    assert config_error(tmp_path).startswith(f"{tmp_path}: cannot read: ")


# -- with_overrides --------------------------------------------------------------------------------


def test_with_overrides_applies_dotted_keys_and_skips_none(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, ONTVANGER))
    o = s.with_overrides(**{"server.port": 9999, "server.host": None, "store.url": "sqlite:////tmp/x.db"})
    assert o.server.port == 9999
    assert o.server.host == "127.0.0.1"
    assert o.store.url == "sqlite:////tmp/x.db"
    assert o.source == s.source
    assert o.stuf == s.stuf
    # The original is untouched.
    assert s.server.port == 8080
    assert s.store.url == "sqlite:///loket-adapter.db"


def test_with_overrides_nothing_is_equal(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, ONTVANGER))
    assert s.with_overrides(**{"server.port": None}) == s


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"server.port": 0}, "server.port: Input should be greater than or equal to 1"),
        ({"server.port": 70000}, "server.port: Input should be less than or equal to 65535"),
        ({"store.url": "oracle://db/x"}, "store.url: unsupported database 'oracle'"),
        ({"server.colour": "blue"}, "server.colour: unknown key"),
    ],
)
def test_with_overrides_validates(tmp_path: Path, override: dict[str, object], expected: str) -> None:
    s = load_settings(write(tmp_path, ONTVANGER))
    with pytest.raises(ConfigError) as info:
        s.with_overrides(**override)
    assert str(info.value).startswith(f"{s.source}: {expected}"), str(info.value)


# -- SystemSettings.matches ------------------------------------------------------------------------


def test_matches_without_administratie_accepts_any() -> None:
    s = SystemSettings(organisatie="00000001800866472000", applicatie="OLO")
    assert s.matches("00000001800866472000", "OLO", None)
    assert s.matches("00000001800866472000", "OLO", "")
    assert s.matches("00000001800866472000", "OLO", "ANY")
    assert not s.matches("00000001800866472000", "ZAAKSYSTEEM", None)
    assert not s.matches("00000001002564440000", "OLO", None)
    assert not s.matches(None, "OLO", None)
    assert not s.matches("00000001800866472000", None, None)
    assert not s.matches("00000001800866472000", "olo", None)  # case matters


def test_matches_with_administratie_requires_it() -> None:
    s = SystemSettings(organisatie="00000001800866472000", applicatie="OLO", administratie="VERGUNNINGEN")
    assert s.matches("00000001800866472000", "OLO", "VERGUNNINGEN")
    assert not s.matches("00000001800866472000", "OLO", "ANDERS")
    assert not s.matches("00000001800866472000", "OLO", None)
    assert not s.matches("00000001800866472000", "OLO", "")
    assert not s.matches("00000001800866472000", "ZAAKSYSTEEM", "VERGUNNINGEN")


def test_empty_organisatie_matches_missing_one() -> None:
    s = SystemSettings(organisatie="", applicatie="OLO")
    assert s.matches(None, "OLO", None)
    assert s.matches("", "OLO", None)
    assert not s.matches("x", "OLO", None)


def test_system_field_limits() -> None:
    with pytest.raises(ValidationError):
        SystemSettings(organisatie="x", applicatie="AB")  # applicatie needs 3 characters
    with pytest.raises(ValidationError):
        SystemSettings(organisatie="x" * 201, applicatie="OLO")


def test_settings_need_stuf() -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({})
