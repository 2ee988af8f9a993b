"""Which provider a command talks to: its profile, address, key and record, worked out once.

``run`` resolves it from the manifest, ``poll`` and ``download`` from the record ``run``
left beside the results file; both keep README's order of precedence for the address and
its trust rule (see :func:`batchgen.provider.config.resolve_base_url`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from batchgen.errors import NoBaseUrlError, UsageError
from batchgen.profile import Profile
from batchgen.profile_files import is_builtin, load_profile
from batchgen.provider.config import (
    BASE_URL_ENV,
    DEFAULT_API_KEY_ENV,
    ProviderRecord,
    Secret,
    UrlSource,
    allowed_base_urls,
    check_base_url,
    load_provider_record,
    provider_record_path,
    resolve_api_key,
    resolve_base_url,
)

DEFAULT_PROFILE = "openai"
MOCK_API_KEY = Secret("mock-key")
SIMULATED_API = "(simulated API)"  # the address shown until the simulated API has started
NO_ADDRESS = "(no address yet: pass --base-url or set OPENAI_BASE_URL)"


@dataclass(frozen=True)
class ProviderOptions:
    """What the operator said about the provider (``run``, ``poll``, ``download``);
    ``env`` is the process environment, read once by the CLI."""

    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # holds the API key
    profile: str | None = None
    base_url: str | None = None
    api_key_env: str = DEFAULT_API_KEY_ENV
    allow_insecure: bool = False
    allowed_base_urls: tuple[str, ...] = ()  # --allow-base-url: origins a file may name
    request_timeout: float = 120.0
    # from the config files (batchgen.config_files): after the manifest's (or record's)
    # profile, and after $OPENAI_BASE_URL; the user's own file is the operator's choice
    configured_profile: str | None = None
    configured_profile_trusted: bool = False
    configured_urls: tuple[UrlSource, ...] = ()


@dataclass(frozen=True)
class Provider:
    """The provider a command talks to, resolved once and used by every step after."""

    profile: Profile
    base_url: str  # SIMULATED_API with ``mock``, until the simulated API is started
    api_key: Secret | None = field(repr=False)  # None for a dry run: it sends nothing
    record: ProviderRecord | None  # what ``run`` saves; what ``poll`` found (None: no record)
    request_timeout: float = 120.0
    mock: bool = False

    def key(self) -> Secret:
        """The API key; only a provider resolved for sending has one."""
        if self.api_key is None:
            raise RuntimeError("a dry run's provider has no key: it must send nothing")
        return self.api_key


def profile_name(chosen: str | None, suggested: str | None, configured: str | None = None) -> str:
    """The profile to use: the operator's, else the one a manifest or record names, else
    a config file's, else the default."""
    return chosen or suggested or configured or DEFAULT_PROFILE


def provider_for_run(
    options: ProviderOptions,
    profile: Profile,
    *,
    manifest_url: UrlSource,
    name: str,
    mock: bool,
    dry_run: bool,
) -> Provider:
    """The provider of ``run``: ``profile`` (loaded by ``name``), the address by README's
    order with the manifest's ``base_url:`` (``manifest_url``) second, and the key — none
    for a dry run, the simulated API's own with ``mock``."""
    record = ProviderRecord(name, "")
    if mock:
        return Provider(profile, SIMULATED_API, MOCK_API_KEY, record, options.request_timeout, True)
    try:
        url = _address(options, profile, manifest_url, name)
    except NoBaseUrlError:
        if not dry_run:
            raise
        url = NO_ADDRESS  # a dry run sends nothing; its plan says an address is missing
    key = None if dry_run else resolve_api_key(options.env, options.api_key_env)
    return Provider(profile, url, key, ProviderRecord(name, url), options.request_timeout)


def provider_for_results(options: ProviderOptions, results: Path) -> Provider:
    """The provider of ``poll`` and ``download``: where ``run`` sent the jobs of
    ``results`` by the record beside it, which is a file like any other: its address is
    used only where the operator chose or allowed it."""
    if not results.exists():
        raise UsageError(f"{results}: no such results file")
    recorded = load_provider_record(results)
    if recorded is not None and not recorded.base_url and not options.base_url:
        raise UsageError(
            f"{results}: its jobs were sent to the simulated API of a finished "
            "`run --mock`, which is gone; use `run --mock --wait` to follow jobs in one go"
        )
    suggested = recorded.profile if recorded else None
    name = profile_name(options.profile, suggested, options.configured_profile)
    profile = load_profile(name)
    record_url = UrlSource(
        recorded.base_url if recorded else None,
        provider_record_path(results).name,
        operator=False,
    )
    url = _address(options, profile, record_url, name)
    key = resolve_api_key(options.env, options.api_key_env)
    return Provider(profile, url, key, recorded, options.request_timeout)


def profile_for_results(results: Path, name: str | None = None) -> Profile:
    """``name``'s profile, else the one the run of ``results`` used, else the default."""
    recorded = load_provider_record(results)
    return load_profile(profile_name(name, recorded.profile if recorded else None))


def _address(options: ProviderOptions, profile: Profile, files_url: UrlSource, name: str) -> str:
    """Where the key goes, in README's order: ``--base-url``, what the files name
    (``files_url``), ``$OPENAI_BASE_URL``, the profile's default — the last the operator's
    only if they chose the profile (``--profile`` or a built-in one), not a file they
    were handed."""
    sources = (
        UrlSource(options.base_url, "--base-url", operator=True),
        files_url,
        UrlSource(options.env.get(BASE_URL_ENV), f"${BASE_URL_ENV}", operator=True),
        *options.configured_urls,
        UrlSource(
            profile.default_base_url,
            f"the default_base_url: of profile {profile.name}",
            operator=_operator_chose_profile(options, name),
        ),
    )
    allow_list = allowed_base_urls(options.allowed_base_urls, options.env)
    url = resolve_base_url(sources, allow_list, profile)
    check_base_url(url, allow_insecure=options.allow_insecure)
    return url


def _operator_chose_profile(options: ProviderOptions, name: str) -> bool:
    """Whether the operator chose profile ``name``: by --profile, a built-in name, or
    naming it in their own config file (not a project file that came with a manifest)."""
    by_config = options.configured_profile_trusted and name == options.configured_profile
    return options.profile is not None or is_builtin(name) or by_config
