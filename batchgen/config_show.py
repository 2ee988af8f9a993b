"""``batchgen config``: the settings a ``run`` without flags would use, and where each came from.

The sources are listed in README's precedence (flags aside, since ``config`` takes none):
the manifest, the environment, the project's ``batchgen.toml``, the user's ``config.toml``,
the defaults. The address is worked out by the same resolution ``run`` uses, so a
``base_url`` a project file may not choose shows as refused here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from batchgen.config_files import ConfigFiles, user_config_path
from batchgen.errors import UsageError
from batchgen.ledger import default_results_path
from batchgen.manifest import Manifest
from batchgen.notify import shown_url
from batchgen.profile_files import load_profile
from batchgen.provider.config import ALLOWED_BASE_URLS_ENV, BASE_URL_ENV, UrlSource
from batchgen.provider.resolve import NO_ADDRESS, ProviderOptions, profile_name, provider_for_run

DEFAULT = "default"


@dataclass(frozen=True)
class Setting:
    """One effective setting: its config key, its value as text, and where it came from."""

    key: str
    value: str
    source: str


def effective_settings(
    files: ConfigFiles,
    manifest: Manifest | None,
    env: Mapping[str, str],
    defaults: Mapping[str, object],
) -> list[Setting]:
    """Every setting, in the order of ``defaults`` (the config keys and run's defaults)."""
    found = _profile(files, manifest)
    settings = [found, _base_url(files, manifest, env, found.value), _output(files, manifest)]
    settings.append(_allowed(files, env))
    for key, default in defaults.items():
        if key not in {s.key for s in settings}:
            settings.append(_from_files(files, key, default))
    return settings


def render_settings(settings: Sequence[Setting], files: ConfigFiles, env: Mapping[str, str]) -> str:
    """The settings as an aligned table, after the config files looked at."""
    lines = [f"user config:    {_file_state(user_config_path(env), files.user is not None)}"]
    if files.project is not None:
        lines.append(f"project config: {files.project.path}")
    else:
        lines.append("project config: (no batchgen.toml beside the manifest)")
    width = max(len(s.key) for s in settings)
    value_width = min(max(len(s.value) for s in settings), 48)
    lines += [f"{s.key:<{width}}  {s.value:<{value_width}}  {s.source}" for s in settings]
    return "\n".join(lines)


def _file_state(path: Path, exists: bool) -> str:
    return str(path) if exists else f"{path} (none)"


def _profile(files: ConfigFiles, manifest: Manifest | None) -> Setting:
    if manifest is not None and manifest.profile:
        return Setting("profile", manifest.profile, f"{manifest.path.name}'s profile:")
    found = files.lookup("profile")
    if found is not None:
        return Setting("profile", str(found[0]), str(found[1].path))
    return Setting("profile", profile_name(None, None), DEFAULT)


def _base_url(
    files: ConfigFiles, manifest: Manifest | None, env: Mapping[str, str], profile: str
) -> Setting:
    """The address ``run`` would use, by its own resolution; a refusal is shown, not raised."""
    options = ProviderOptions(
        env=env,
        configured_profile=profile,
        configured_profile_trusted=True,  # a refused profile address shows as refused below
        configured_urls=files.url_sources(),
        allowed_base_urls=files.allowed_base_urls(),
    )
    manifest_url = manifest.base_url if manifest is not None else None
    name = manifest.path.name if manifest is not None else "the manifest"
    sources = (
        (manifest_url, f"{name}'s base_url:"),
        (env.get(BASE_URL_ENV), f"${BASE_URL_ENV}"),
        *((s.url, str(s.origin_of).removesuffix("'s base_url")) for s in files.url_sources()),
    )
    source = next((where for url, where in sources if url), f"profile {profile}'s default")
    try:
        provider = provider_for_run(
            options,
            load_profile(profile),
            manifest_url=UrlSource(manifest_url, f"{name}'s base_url:", operator=False),
            name=profile,
            mock=False,
            dry_run=True,
        )
    except UsageError as exc:
        return Setting("base_url", "(refused)", f"{source}: {exc}")
    if provider.base_url == NO_ADDRESS:
        return Setting("base_url", "(none)", "no source names one")
    return Setting("base_url", provider.base_url, source)


def _output(files: ConfigFiles, manifest: Manifest | None) -> Setting:
    if manifest is not None and manifest.output is not None:
        return Setting("output", str(manifest.output), f"{manifest.path.name}'s output:")
    found = files.lookup("output")
    if found is not None:
        return Setting("output", str(found[0]), str(found[1].path))
    beside = default_results_path(manifest.path) if manifest else "<manifest>.results.csv"
    return Setting("output", str(beside), DEFAULT)


def _allowed(files: ConfigFiles, env: Mapping[str, str]) -> Setting:
    listed = [u.strip() for u in env.get(ALLOWED_BASE_URLS_ENV, "").split(",") if u.strip()]
    sources = [f"${ALLOWED_BASE_URLS_ENV}"] if listed else []
    if files.allowed_base_urls() and files.user is not None:
        sources.append(str(files.user.path))
    value = ", ".join((*listed, *files.allowed_base_urls())) or "(none)"
    return Setting("allowed_base_urls", value, " + ".join(sources) or DEFAULT)


def _from_files(files: ConfigFiles, key: str, default: object) -> Setting:
    found = files.lookup(key)
    if found is not None and key == "notify_url":  # a webhook's path is its token
        return Setting(key, shown_url(str(found[0])), str(found[1].path))
    if found is not None:
        return Setting(key, _text(found[0]), str(found[1].path))
    return Setting(key, _text(default), DEFAULT)


def _text(value: object) -> str:
    if not isinstance(value, str | int | float | list | tuple):  # None, click's UNSET
        return "(none)"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
