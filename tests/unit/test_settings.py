"""Settings: flags over COOPFED_* variables over defaults, and what is refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coopfed.cli.main import build_parser, resolve_settings
from federation.settings import ENV_NAMES, Settings, SettingsError, load_settings

# The names issue 2 lists: setting -> (flag, variable, raw value, parsed value)
ISSUE_NAMES: dict[str, tuple[str, str, str, Any]] = {
    "host": ("--host", "COOPFED_HOST", "0.0.0.0", "0.0.0.0"),
    "port": ("--port", "COOPFED_PORT", "9000", 9000),
    "origin": ("--origin", "COOPFED_ORIGIN", "https://coop.example", "https://coop.example"),
    "data_dir": ("--data-dir", "COOPFED_DATA_DIR", "/srv/coop", Path("/srv/coop")),
    "username": ("--username", "COOPFED_USERNAME", "bakery", "bakery"),
    "name": ("--name", "COOPFED_NAME", "Bakery Coop", "Bakery Coop"),
    "summary": ("--summary", "COOPFED_SUMMARY", "We bake.", "We bake."),
    "avatar_url": ("--avatar-url", "COOPFED_AVATAR_URL", "https://i.example/a.png",
                   "https://i.example/a.png"),
    "database_url": ("--database-url", "DATABASE_URL", "postgresql://u@h/db",
                     "postgresql://u@h/db"),
}  # fmt: skip


RunSettings = Callable[..., Settings]


@pytest.fixture
def run_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RunSettings:
    """What `coopfed run ARGV` would run with, in an environment of only ``environ``.

    In an empty directory: a ./data left by `dev.py run` would be remembered.
    """
    monkeypatch.chdir(tmp_path)

    def resolve(argv: list[str], environ: dict[str, str] | None = None) -> Settings:
        for var, _ in ENV_NAMES.values():
            monkeypatch.delenv(var, raising=False)
        for var, value in (environ or {}).items():
            monkeypatch.setenv(var, value)
        return resolve_settings(build_parser().parse_args(["run", *argv]), for_run=True)

    return resolve


def test_defaults() -> None:
    settings = load_settings({}, environ={})
    assert settings == Settings()
    assert (settings.host, settings.port, settings.username) == ("127.0.0.1", 8080, "coop")
    assert settings.data_dir == Path("data")
    assert settings.database_url == ""
    assert settings.allow_private_addresses is False
    # Without an origin the node is http://HOST:PORT and handles are coop@HOST:PORT
    assert settings.base_url == "http://127.0.0.1:8080"
    assert settings.domain == "127.0.0.1:8080"


@pytest.mark.parametrize("name", sorted(ISSUE_NAMES))
def test_every_variable_maps(name: str, run_settings: RunSettings) -> None:
    flag, var, raw, parsed = ISSUE_NAMES[name]
    assert ENV_NAMES[name][0] == var
    # From the environment
    assert getattr(load_settings({}, environ={var: raw}), name) == parsed
    # From the flag of `coopfed run`
    assert getattr(run_settings([flag, raw]), name) == parsed


def test_allow_private_addresses(run_settings: RunSettings) -> None:
    assert ENV_NAMES["allow_private_addresses"][0] == "COOPFED_ALLOW_PRIVATE_ADDRESSES"
    for raw in ("1", "true", "YES", "on"):
        env = {"COOPFED_ALLOW_PRIVATE_ADDRESSES": raw}
        assert load_settings({}, environ=env).allow_private_addresses is True
    for raw in ("0", "false", "no", "off"):
        env = {"COOPFED_ALLOW_PRIVATE_ADDRESSES": raw}
        assert load_settings({}, environ=env).allow_private_addresses is False
    assert run_settings(["--allow-private-addresses"]).allow_private_addresses is True
    assert run_settings([]).allow_private_addresses is False


def test_every_switch_can_be_turned_off(run_settings: RunSettings) -> None:
    switches = [name for name, (_, kind) in ENV_NAMES.items() if kind is bool]
    assert switches, "no on/off settings?"
    for name in switches:
        var, _ = ENV_NAMES[name]
        flag = "--" + name.replace("_", "-")
        on = {var: "1"}
        # The variable turns it on; `--no-…` turns it off again; so do 0 and false
        assert getattr(run_settings([], on), name) is True
        assert getattr(run_settings([flag.replace("--", "--no-", 1)], on), name) is False
        assert getattr(run_settings([flag], {var: "false"}), name) is True
        for off in ("0", "false", "Off"):
            assert getattr(load_settings({}, environ={var: off}), name) is False
        # A typo is an error, not a silent "off"
        with pytest.raises(SettingsError):
            load_settings({}, environ={var: "ture"})


def test_precedence_flags_over_env_over_defaults(run_settings: RunSettings) -> None:
    env = {"COOPFED_PORT": "9000", "COOPFED_HOST": "10.0.0.1", "COOPFED_NAME": "From env"}
    settings = run_settings(["--port", "9100", "--name", "From flag"], env)
    assert settings.port == 9100  # flag beats env
    assert settings.name == "From flag"
    assert settings.host == "10.0.0.1"  # env beats default
    assert settings.username == "coop"  # default
    assert settings.base_url == "http://10.0.0.1:9100"


def test_empty_variable_means_unset() -> None:
    settings = load_settings({}, environ={"COOPFED_PORT": "", "DATABASE_URL": ""})
    assert settings.port == 8080
    assert settings.database_url == ""


def test_none_flags_are_ignored() -> None:
    settings = load_settings({"port": None, "host": None}, environ={"COOPFED_PORT": "9001"})
    assert settings.port == 9001
    assert settings.host == "127.0.0.1"


def test_origin_sets_base_url_and_domain() -> None:
    settings = load_settings({"origin": "https://Coop.example/"}, environ={})
    assert settings.base_url == "https://Coop.example"
    assert settings.domain == "Coop.example"
    with_port = load_settings({"origin": "https://coop.example:8443"}, environ={})
    assert with_port.domain == "coop.example:8443"
    assert load_settings({"host": "0.0.0.0", "port": 9}, environ={}).base_url == "http://0.0.0.0:9"


@pytest.mark.parametrize(
    ("flags", "name"),
    [
        ({"port": 0}, "port"),
        ({"port": 65536}, "port"),
        ({"port": "eighty"}, "port"),
        ({"origin": "https://coop.example/path"}, "origin"),
        ({"origin": "https://coop.example/?x=1"}, "origin"),
        ({"origin": "ftp://coop.example"}, "origin"),
        ({"origin": "coop.example"}, "origin"),
        ({"origin": "https://"}, "origin"),
        ({"username": "my coop"}, "username"),
        ({"username": ""}, "username"),
        ({"username": "-coop"}, "username"),
        ({"username": "coop@host"}, "username"),
        ({"workers": "many"}, "workers"),
    ],
)
def test_bad_values_raise(flags: dict[str, object], name: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(flags, environ={})
    assert caught.value.name == name


def test_bad_env_value_raises() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({}, environ={"COOPFED_PORT": "0"})
    assert caught.value.name == "port"
    with pytest.raises(SettingsError):
        load_settings({}, environ={"COOPFED_ORIGIN": "ftp://coop.example"})


def test_dotted_and_dashed_usernames_are_allowed() -> None:
    # Mastodon's username pattern allows separators inside a name
    for username in ("bakery.coop", "bakery-coop", "bakery_coop", "b2"):
        assert load_settings({"username": username}, environ={}).username == username


@pytest.mark.parametrize(
    ("name", "value"),
    [("worker_nice", -1), ("worker_nice", 20), ("worker_yield_seconds", -0.5)],
)
def test_worker_priority_out_of_range_is_refused_by_name(name: str, value: float) -> None:
    # Given an admin's out-of-range worker priority, Then the node names the setting
    with pytest.raises(SettingsError) as caught:
        Settings(**{name: value})
    assert name in str(caught.value)
    # And the defaults give way: nice 10, 1 s at most per claim
    assert (Settings().worker_nice, Settings().worker_yield_seconds) == (10, 1.0)
