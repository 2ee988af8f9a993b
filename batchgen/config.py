"""Where settings come from: command line, manifest, environment, profile — in that order.

The CLI reads the environment once and passes it here as a mapping; nothing deeper in
batchgen reads ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from batchgen.errors import UsageError
from batchgen.profile import Profile

OFFICIAL_BASE_URL = "https://api.openai.com/v1"
BASE_URL_ENV = "OPENAI_BASE_URL"
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"


@dataclass(frozen=True)
class Secret:
    """An API key that never shows itself in reprs, logs or tracebacks."""

    value: str

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def resolve_base_url(
    cli_value: str | None,
    manifest_value: str | None,
    env: Mapping[str, str],
    profile: Profile,
) -> str:
    """``--base-url``, then the manifest's ``base_url:``, then ``OPENAI_BASE_URL``, then the
    profile's default (the official SDK's convention)."""
    for candidate in (cli_value, manifest_value, env.get(BASE_URL_ENV), profile.default_base_url):
        if candidate:
            return candidate.rstrip("/")
    raise UsageError(
        f"the {profile.name} profile has no default address: "
        f"pass --base-url, set base_url: in the manifest, or set {BASE_URL_ENV}"
    )


def check_base_url(url: str, *, allow_insecure: bool) -> None:
    """Refuse a base URL that would send the API key in clear text to another machine."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked for it
    except ValueError:
        raise UsageError(f"base URL {url!r} has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"base URL {url!r} is not an http(s) address")
    if parts.scheme == "http" and not allow_insecure and not is_loopback(parts.hostname):
        raise UsageError(
            f"base URL {url} is plain http to another host: the API key would travel in "
            "clear text; use https, or pass --allow-insecure if you really mean it"
        )


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_api_key(env: Mapping[str, str], variable: str) -> Secret:
    """The API key from the environment variable ``variable``; an error naming it if unset."""
    value = env.get(variable, "").strip()
    if not value:
        raise UsageError(
            f"no API key: set the environment variable {variable} "
            "(or name another with --api-key-env, or use --mock to try the simulated API)"
        )
    return Secret(value)


@dataclass(frozen=True)
class ProviderRecord:
    """Where a results file's jobs were sent, so that ``poll`` and ``download`` go there too
    (a relay's key must not go to OpenAI's default address). Never holds the key."""

    profile: str
    base_url: str  # "" for the simulated API of a finished ``run --mock``


def provider_record_path(results: Path) -> Path:
    """``night.results.csv`` -> ``night.results.provider.json``, beside it."""
    return results.with_name(f"{results.stem}.provider.json")


def save_provider_record(results: Path, record: ProviderRecord) -> None:
    """Remember where the jobs of ``results`` were sent."""
    try:
        provider_record_path(results).write_text(json.dumps(asdict(record)) + "\n", "utf-8")
    except OSError as exc:
        raise UsageError(f"{results}: cannot write beside the results: {exc.strerror}") from None


def load_provider_record(results: Path) -> ProviderRecord | None:
    """Where the jobs of ``results`` were sent, if a run recorded it."""
    try:
        data = json.loads(provider_record_path(results).read_text("utf-8"))
        return ProviderRecord(str(data["profile"]), str(data["base_url"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
