"""Options a command was not given, taken from the config files (:mod:`batchgen.config_files`).

Precedence (README): flags, then the manifest (or the record beside a results file), then
the environment, then the project's ``batchgen.toml``, then the user's ``config.toml``,
then the profile's defaults. An option counts as given only when click says it came from
the command line (``ctx.get_parameter_source``), so a flag's default never hides a file's
value. ``profile``, ``base_url``, ``output`` and ``allowed_base_urls`` have sources in
between (the manifest, the environment) and reach the provider's resolution as data
instead; every other key replaces its option's default here.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

import click
from click.core import ParameterSource

from batchgen.config_files import NO_CONFIG, ConfigFiles, load_config_files
from batchgen.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])
_META_KEY = "batchgen.config_files"

#: Config keys that simply replace an option's default, by the option's parameter name.
OPTION_KEYS: Mapping[str, str] = {
    "api_key_env": "api_key_env",
    "concurrency": "concurrency",
    "rpm": "rpm",
    "max_attempts": "max_attempts",
    "backoff": "backoff",
    "request_timeout": "request_timeout",
    "give_up_after": "give_up_after",
    "grace": "grace",
    "wait": "wait",
    "timeout": "timeout",
    "poll_rpm": "poll_rpm",
    "poll_interval": "poll_interval",
    "variants": "variants",
    "name": "name_template",
    "download": "download_dir",
    "notify_url": "notify",
}


def configured(beside: str) -> Callable[[F], F]:
    """Read the config files before the command's option groups are collected: the project
    file is the one in the folder of the command's argument ``beside`` (MANIFEST, RESULTS).

    Written right below ``@cli.command`` so that it runs first.
    """

    def apply(command: F) -> F:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = click.get_current_context()
            files = load_config_files(Path(kwargs[beside]).parent, os.environ)
            # the option groups' builders read it back (config_of_invocation) while the
            # command runs: one invocation's settings, as click's ctx.meta is meant for
            ctx.meta[_META_KEY] = files
            return command(*args, **fill_defaults(ctx, files, kwargs))

        return cast(F, wrapper)

    return apply


def config_of_invocation() -> ConfigFiles:
    """The config files the running command read (none outside a configured command)."""
    ctx = click.get_current_context(silent=True)
    found = None if ctx is None else ctx.find_root().meta.get(_META_KEY)
    return found if isinstance(found, ConfigFiles) else NO_CONFIG


def fill_defaults(ctx: click.Context, files: ConfigFiles, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with every option left at its default replaced by the files' value,
    converted (and range-checked) by the option's own type."""
    params = {p.name: p for p in ctx.command.params}
    filled = dict(kwargs)
    for key, name in OPTION_KEYS.items():
        found = files.lookup(key)
        param = params.get(name)
        if found is None or param is None or not given_by_default(ctx, name):
            continue
        value, source = found
        try:
            filled[name] = param.type_cast_value(ctx, value)
        except click.BadParameter as exc:
            raise UsageError(f"{source.path}: {key}: {exc.message}") from None
    return filled


def given_by_default(ctx: click.Context, name: str) -> bool:
    """True when option ``name`` was not given (click filled in its default)."""
    return ctx.get_parameter_source(name) in (ParameterSource.DEFAULT, None)
