"""Where settings come from: command line, manifest, environment, profile — in that order.

The CLI reads the environment once and passes it here as a mapping; nothing deeper in
batchgen reads ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from batchgen.errors import NoBaseUrlError, UsageError
from batchgen.profile import Profile

OFFICIAL_BASE_URL = "https://api.openai.com/v1"
BASE_URL_ENV = "OPENAI_BASE_URL"
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
ALLOWED_BASE_URLS_ENV = "BATCHGEN_ALLOWED_BASE_URLS"
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Secret:
    """An API key that never shows itself in reprs, logs or tracebacks."""

    value: str

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class UrlSource:
    """One place a base URL may come from, in precedence order, and whether the operator
    chose it (a command-line flag, the environment, a profile passed with ``--profile``)
    or it came with the manifest (its ``base_url:``, a profile file it names, the record
    beside a results file), which anyone may have written."""

    url: str | None
    origin_of: str  # names the source in messages: "--base-url", "the manifest's base_url:"
    operator: bool


def resolve_base_url(sources: Sequence[UrlSource], allowed: Sequence[str], profile: Profile) -> str:
    """The first base URL given, in the order of ``sources`` (README: ``--base-url``, the
    manifest, ``OPENAI_BASE_URL``, the profile's default).

    A URL the operator did not choose is used only when its origin is one the operator
    chose elsewhere or allowed (``--allow-base-url``, ``BATCHGEN_ALLOWED_BASE_URLS``):
    otherwise a manifest handed over by someone else could send the key to their server.
    """
    chosen = next((s for s in sources if s.url), None)
    if chosen is None or chosen.url is None:
        raise NoBaseUrlError(_no_address_message(profile))
    url = chosen.url.rstrip("/")
    if not chosen.operator:
        trusted = [s.url for s in sources if s.operator and s.url] + list(allowed)
        if url_origin(url) not in {url_origin(t) for t in trusted}:
            raise UsageError(_not_allowed_message(url, chosen.origin_of))
    return url


def _no_address_message(profile: Profile) -> str:
    if not profile.retired:
        return (
            f"the {profile.name} profile has no default address: "
            f"pass --base-url, set base_url: in the manifest, or set {BASE_URL_ENV}"
        )
    return (
        f"the {profile.name} profile has no address to send to: {profile.retired}. "
        "Point batchgen at a relay that serves /v1/videos: --profile new-api (or relay, "
        f"litellm, sora-app; `batchgen profiles` lists them) with --base-url "
        f"https://YOUR-RELAY/v1 or {BASE_URL_ENV}; `batchgen doctor --profile P --base-url URL` "
        "checks a relay without spending anything. Nothing was sent"
    )


def _not_allowed_message(url: str, origin_of: str) -> str:
    allow = "{}://{}".format(*urlsplit(url)[:2])
    return (
        f"{origin_of} sends the API key to {allow}, which you have not chosen: "
        f"nothing was sent. If you trust it, pass --allow-base-url {allow} (or --base-url "
        f"{url}), or add it to {ALLOWED_BASE_URLS_ENV} (comma-separated)"
    )


def allowed_base_urls(cli_values: Sequence[str], env: Mapping[str, str]) -> tuple[str, ...]:
    """The operator's allow-list: ``--allow-base-url`` values and ``BATCHGEN_ALLOWED_BASE_URLS``."""
    listed = [u.strip() for u in env.get(ALLOWED_BASE_URLS_ENV, "").split(",") if u.strip()]
    values = (*cli_values, *listed)
    for value in values:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(
                f"allowed base URL {value!r} is not an http(s) address like https://relay.example.com"
            )
    return values


def url_origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port of ``url`` (the default port made explicit): what an
    allow-list entry and a redirect are compared by."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme)


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
