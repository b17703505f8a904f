"""Where the CLI sends its requests: --local, --endpoint, profiles of the config file, and
whether it signs."""

from __future__ import annotations

from pathlib import Path

import pytest

from vector_tasks_client.config import ConfigError, Target, config_path, resolve_target

CONFIG = """
[profiles.default]
endpoint = "https://a1b2c3.execute-api.eu-west-1.amazonaws.com/prod/"
aws_profile = "ingest"

[profiles.staging]
endpoint = "https://tasks.staging.example.com/v1"
region = "us-east-2"

[profiles.laptop]
endpoint = "http://127.0.0.1:4000"
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    return {"VECTOR_TASKS_CONFIG": str(path)}


def test_the_config_file_lives_under_xdg_config_home_or_where_the_environment_says(tmp_path: Path) -> None:
    assert config_path({"VECTOR_TASKS_CONFIG": "/etc/vt.toml"}) == Path("/etc/vt.toml")
    assert config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/vector-tasks/config.toml")
    assert config_path({}) == Path.home() / ".config" / "vector-tasks" / "config.toml"


def test_local_is_the_make_run_stack_unsigned(env: dict[str, str]) -> None:
    assert resolve_target(local=True, env=env) == Target("http://127.0.0.1:3000", sign=False)


def test_an_endpoint_is_signed_unless_it_is_on_this_machine(env: dict[str, str]) -> None:
    assert resolve_target(endpoint="https://x.example.com/", env=env) == Target("https://x.example.com", sign=True)
    for local in ("http://localhost:3000", "http://127.0.0.2:3000", "http://[::1]:3000"):
        assert resolve_target(endpoint=local, env=env).sign is False
    assert resolve_target(endpoint="http://localhost:3000", sign=True, env=env).sign is True


def test_the_default_profile_is_used_when_none_is_named(env: dict[str, str]) -> None:
    assert resolve_target(env=env) == Target(
        "https://a1b2c3.execute-api.eu-west-1.amazonaws.com/prod", sign=True, region=None, aws_profile="ingest"
    )


def test_a_named_profile_and_the_options_that_override_it(env: dict[str, str]) -> None:
    assert resolve_target(profile="staging", env=env) == Target(
        "https://tasks.staging.example.com/v1", sign=True, region="us-east-2"
    )
    assert resolve_target(profile="staging", region="eu-central-1", aws_profile="ops", env=env) == Target(
        "https://tasks.staging.example.com/v1", sign=True, region="eu-central-1", aws_profile="ops"
    )
    assert resolve_target(env={**env, "VECTOR_TASKS_PROFILE": "laptop"}).sign is False


def test_what_cannot_be_resolved_says_what_to_give(env: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"no profile 'prod' in .*config.toml \(profiles there: default, laptop, staging\)"
    ):
        resolve_target(profile="prod", env=env)
    empty = {"VECTOR_TASKS_CONFIG": str(tmp_path / "missing.toml")}
    with pytest.raises(ConfigError, match=r"no endpoint: give --endpoint URL, --profile NAME .* or --local"):
        resolve_target(env=empty)
    with pytest.raises(ConfigError, match="not an http"):
        resolve_target(endpoint="ftp://x", env=env)
    with pytest.raises(ConfigError, match="without query or fragment"):
        resolve_target(endpoint="https://x/prod?stage=1", env=env)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[profiles.a]\nendpont = 'https://x'\n", r"profile 'a' has unknown keys \['endpont'\]"),
        ("[profiles.a]\nregion = 'x'\n", "profile 'a' needs endpoint"),
        ("profiles = 3\n", "`profiles` must be tables"),
        ("[profiles.a\n", "cannot read the config file"),
    ],
)
def test_a_bad_config_file_is_named_with_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        resolve_target(profile="a", env={"VECTOR_TASKS_CONFIG": str(path)})
