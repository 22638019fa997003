"""Settings from the environment: defaults, precedence, validation messages that name variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from drain.settings import Settings, SettingsError

_ALL_VARS = [
    "DATABASE_URL",
    "PORT",
    "DRAIN_HOST",
    "DRAIN_USERNAME",
    "DRAIN_PASSWORD",
    "DRAIN_ALLOW_ANONYMOUS",
    "DRAIN_TOKENS",
    "DRAIN_MAX_BODY_BYTES",
    "DRAIN_MAX_FRAME_BYTES",
    "DRAIN_BODY_TIMEOUT_S",
    "DRAIN_FLUSH_MAX_EVENTS",
    "DRAIN_FLUSH_MAX_DELAY_S",
    "DRAIN_QUEUE_MAX_EVENTS",
    "DRAIN_QUEUE_MAX_BYTES",
    "DRAIN_QUEUE_MAX_WAIT_S",
    "DRAIN_WRITER_FLUSHERS",
    "DRAIN_ACCEPT_PAST_S",
    "DRAIN_ACCEPT_FUTURE_S",
    "DRAIN_DB_POOL_SIZE",
    "DRAIN_DATA_DIR",
    "WEB_CONCURRENCY",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ALL_VARS:
        monkeypatch.delenv(name, raising=False)


def test_defaults_for_a_local_drain() -> None:
    s = Settings.load()
    assert s.database_url is None
    assert s.port == 8000
    assert s.host == "127.0.0.1"
    assert s.drain_max_body_bytes == 8 * 2**20
    assert s.drain_max_frame_bytes == 65536
    assert s.drain_body_timeout_s == 10.0
    assert s.web_concurrency == 1
    assert s.allowed_drain_tokens is None
    assert not s.credentials_required
    s.check_serving()  # a local drain on loopback may run without credentials


def test_environment_is_read_case_insensitively_and_empty_means_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("drain_max_body_bytes", "4096")
    monkeypatch.setenv(
        "DRAIN_TOKENS",
        " d.11111111-2222-3333-4444-555555555555 , d.aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee,,",
    )
    monkeypatch.setenv("DATABASE_URL", "")
    s = Settings.load()
    assert s.port == 9123
    assert s.drain_max_body_bytes == 4096
    assert s.allowed_drain_tokens == frozenset(
        {"d.11111111-2222-3333-4444-555555555555", "d.aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"}
    )
    assert s.database_url is None


def test_keyword_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    assert Settings.load(port=9999).port == 9999


def test_deployed_drain_binds_all_interfaces_and_hides_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u:hunter2@db.example:5432/d")
    monkeypatch.setenv("DRAIN_USERNAME", "logplex")
    monkeypatch.setenv("DRAIN_PASSWORD", "s3cret-pw")
    s = Settings.load()
    assert s.host == "0.0.0.0"
    assert s.deployed and s.credentials_required
    s.check_serving()
    shown = repr(s) + str(s)
    assert "hunter2" not in shown and "s3cret-pw" not in shown


def test_drain_host_overrides_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db/d")
    monkeypatch.setenv("DRAIN_HOST", "127.0.0.2")
    assert Settings.load().host == "127.0.0.2"


def test_deployed_drain_without_credentials_refuses_to_serve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db/d")
    s = Settings.load()
    with pytest.raises(SettingsError) as raised:
        s.check_serving()
    message = str(raised.value)
    for name in ("DRAIN_USERNAME", "DRAIN_PASSWORD", "DRAIN_ALLOW_ANONYMOUS"):
        assert name in message


def test_deployed_drain_may_allow_anonymous_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db/d")
    monkeypatch.setenv("DRAIN_ALLOW_ANONYMOUS", "true")
    Settings.load().check_serving()


def test_half_the_credentials_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRAIN_PASSWORD", "x")
    with pytest.raises(SettingsError, match="only DRAIN_PASSWORD is set"):
        Settings.load().check_serving()


def test_a_bearer_token_alone_is_credentials_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Fir-only drain: DRAIN_BEARER_TOKEN without Basic credentials may serve deployed."""
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db/d")
    monkeypatch.setenv("DRAIN_BEARER_TOKEN", "0123456789abcdef0123456789abcdef")
    settings = Settings.load()
    settings.check_serving()
    assert settings.credentials_required and not settings.basic_configured
    assert "0123456789abcdef" not in repr(settings)
    monkeypatch.setenv("DRAIN_BEARER_TOKEN", "tiny")
    with pytest.raises(SettingsError) as raised:
        Settings.load()
    assert "DRAIN_BEARER_TOKEN" in str(raised.value) and "tiny" not in str(raised.value)


def test_anonymous_drain_beyond_loopback_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRAIN_HOST", "0.0.0.0")
    with pytest.raises(SettingsError, match=r"DRAIN_HOST=0\.0\.0\.0"):
        Settings.load().check_serving()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("DRAIN_MAX_BODY_BYTES", "-1"),
        ("DRAIN_BODY_TIMEOUT_S", "0"),
        ("DRAIN_ALLOW_ANONYMOUS", "perhaps"),
        ("DRAIN_USERNAME", "a:b"),
        ("DRAIN_TOKENS", " , "),
        ("DRAIN_TOKENS", "notatoken"),
        ("WEB_CONCURRENCY", "0"),
        ("DRAIN_BEARER_TOKEN", "short"),
        ("DRAIN_BEARER_TOKEN", "has a space in it, long enough"),
        ("DRAIN_OTLP_PATH_PREFIX", "otlp"),
        ("DRAIN_OTLP_PATH_PREFIX", "/otlp/"),
        ("DRAIN_OTLP_PATH_PREFIX", "/o tlp"),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        Settings.load()
    assert str(raised.value).startswith("invalid settings: " + name + ":")


def test_errors_do_not_echo_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRAIN_PASSWORD", "x")
    monkeypatch.setenv("PORT", "bad")
    with pytest.raises(SettingsError) as raised:
        Settings.load(drain_password=12345)
    assert "12345" not in str(raised.value)
    assert "DRAIN_PASSWORD" in str(raised.value)


def test_data_dir_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DRAIN_DATA_DIR", str(tmp_path / "pg"))
    assert Settings.load().data_dir() == tmp_path / "pg"


def test_unknown_drain_variables_are_reported_with_a_suggestion() -> None:
    from drain.settings import unknown_drain_variables

    environ = {"DRAIN_PASWORD": "x", "DRAIN_PORT": "1", "DRAIN_USERNAME": "u", "PATH": "/bin"}
    notes = unknown_drain_variables(environ)
    assert notes[0] == "DRAIN_PASWORD (did you mean DRAIN_PASSWORD?)"
    assert len(notes) == 2 and notes[1].startswith("DRAIN_PORT")


def test_the_decode_path_switches_are_not_reported_as_unknown() -> None:
    """DRAIN_PURE_PYTHON and DRAIN_MYPYC are read by drain.speedups, before the settings."""
    from drain.settings import unknown_drain_variables

    assert unknown_drain_variables({"DRAIN_PURE_PYTHON": "1", "DRAIN_MYPYC": "0"}) == []
