"""Where the CLI and the console send their requests: `--local`, `--endpoint`, or a named
profile of the config file.

The config file is TOML, at $VECTOR_TASKS_CONFIG or else
$XDG_CONFIG_HOME/vector-tasks/config.toml (~/.config/vector-tasks/config.toml):

    [profiles.default]            # used when neither --profile nor VECTOR_TASKS_PROFILE names one
    endpoint = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    aws_profile = "ingest-admin"  # optional: the AWS profile whose credentials sign
    region = "eu-west-1"          # optional: read from an execute-api host name otherwise

    [profiles.local]
    endpoint = "http://127.0.0.1:3000"

Requests are signed with SigV4 unless the endpoint is on this machine (loopback), where only
the local stack listens; `sign = true|false` in a profile, or --sign / --no-sign, decide it.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vector_tasks_client.client import LOCAL_ENDPOINT, VectorTasksClient

CONFIG_ENV = "VECTOR_TASKS_CONFIG"
PROFILE_ENV = "VECTOR_TASKS_PROFILE"
DEFAULT_PROFILE = "default"
PROFILE_KEYS = ("endpoint", "region", "aws_profile", "sign")


class ConfigError(Exception):
    """No endpoint can be settled on: the message says what to give."""


def config_path(env: Mapping[str, str] = os.environ) -> Path:
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "vector-tasks" / "config.toml"


def is_loopback(endpoint: str) -> bool:
    host = urlsplit(endpoint).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Target:
    endpoint: str
    sign: bool
    region: str | None = None
    aws_profile: str | None = None

    def client(self, **options: Any) -> VectorTasksClient:
        if self.sign:
            return VectorTasksClient.aws(self.endpoint, region=self.region, profile=self.aws_profile, **options)
        return VectorTasksClient(self.endpoint, **options)


def load_profiles(path: Path) -> dict[str, dict[str, Any]]:
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from None
    profiles = document.get("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(p, dict) for p in profiles.values()):
        raise ConfigError(f"{path}: `profiles` must be tables, [profiles.NAME]")
    for name, profile in profiles.items():
        unknown = sorted(set(profile) - set(PROFILE_KEYS))
        if unknown:
            raise ConfigError(f"{path}: profile {name!r} has unknown keys {unknown} (known: {', '.join(PROFILE_KEYS)})")
        if not isinstance(profile.get("endpoint"), str):
            raise ConfigError(f'{path}: profile {name!r} needs endpoint = "https://..."')
    return profiles


def _checked_endpoint(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"not an http(s) URL: {endpoint!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"an endpoint is the API's base URL, without query or fragment: {endpoint!r}")
    return endpoint.rstrip("/")


def resolve_target(
    *,
    local: bool = False,
    endpoint: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    aws_profile: str | None = None,
    sign: bool | None = None,
    env: Mapping[str, str] = os.environ,
) -> Target:
    """The first of: --local, --endpoint, the named profile (--profile, $VECTOR_TASKS_PROFILE),
    the `default` profile. Options given on the command line win over the profile's."""
    settings: dict[str, Any] = {}
    if local:
        settings = {"endpoint": LOCAL_ENDPOINT}
    elif endpoint:
        settings = {"endpoint": endpoint}
    else:
        path = config_path(env)
        name = profile or env.get(PROFILE_ENV)
        profiles = load_profiles(path)
        if name is not None and name not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(f"no profile {name!r} in {path} (profiles there: {known})")
        if (name or DEFAULT_PROFILE) not in profiles:
            raise ConfigError(
                f"no endpoint: give --endpoint URL, --profile NAME (profiles live in {path}), "
                "or --local for the stack `make run` starts"
            )
        settings = dict(profiles[name or DEFAULT_PROFILE])
    url = _checked_endpoint(settings["endpoint"])
    if sign is None:
        sign = settings.get("sign", not is_loopback(url))
    return Target(
        endpoint=url,
        sign=bool(sign),
        region=region or settings.get("region"),
        aws_profile=aws_profile or settings.get("aws_profile"),
    )
