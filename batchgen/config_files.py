"""Config files: the user's ``config.toml`` and a project's ``batchgen.toml``, read and checked.

Two files may hold settings a command would otherwise take as flags:

* the user's own, ``$XDG_CONFIG_HOME/batchgen/config.toml`` (``~/.config/batchgen/config.toml``
  when ``XDG_CONFIG_HOME`` is unset): the operator's choices, trusted like a flag;
* a project's ``batchgen.toml`` beside the manifest (for ``poll``/``download``, beside the
  results file): it travels with the manifest, so whoever wrote the manifest may have
  written it. It may not say where the key goes: ``allowed_base_urls`` and ``api_key_env``
  there are errors (not silently ignored: a team relying on them should hear that they do
  nothing), and its ``base_url`` is used only when its origin is allowed, like the
  manifest's own ``base_url:``.

This module reads and checks the files (names, which file may hold which key, TOML types);
the CLI converts each value with its option's own type, so the same ranges hold.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from batchgen.errors import UsageError
from batchgen.provider.config import UrlSource

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 reads TOML with the tomli backport
    import tomli as tomllib

PROJECT_FILE = "batchgen.toml"
USER_FILE = Path("batchgen") / "config.toml"

#: Every key a config file may hold and the TOML type its value must have.
KEY_TYPES: Mapping[str, type | tuple[type, ...]] = {
    "profile": str,
    "base_url": str,
    "api_key_env": str,
    "allowed_base_urls": list,
    "output": str,
    "concurrency": int,
    "rpm": (int, float),
    "max_attempts": int,
    "backoff": (int, float),
    "request_timeout": (int, float),
    "give_up_after": (int, float),
    "grace": (int, float),
    "wait": bool,
    "timeout": (int, float),
    "poll_rpm": (int, float),
    "poll_interval": (int, float),
    "variants": list,
    "name": str,
    "download": str,
    "notify_url": str,  # a secret: batchgen config shows only its host
}
#: Where the key goes: only the operator decides, never a file that travels with a manifest.
USER_ONLY = frozenset({"allowed_base_urls", "api_key_env"})
#: A results file is per project: one in the user's file would gather every manifest's rows.
PROJECT_ONLY = frozenset({"output"})
#: Values that are paths, relative to the folder of the file that names them.
PATH_KEYS = frozenset({"output", "download"})


@dataclass(frozen=True)
class ConfigFile:
    """One config file that exists, its checked values (paths made absolute)."""

    path: Path
    trusted: bool  # the user's own file; a project file is not
    values: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigFiles:
    """The config files a command found, the project's first (it takes precedence)."""

    project: ConfigFile | None = None
    user: ConfigFile | None = None

    def found(self) -> tuple[ConfigFile, ...]:
        """The files that exist, in precedence order."""
        return tuple(f for f in (self.project, self.user) if f is not None)

    def lookup(self, key: str) -> tuple[object, ConfigFile] | None:
        """The value of ``key`` from the first file that sets it, and that file."""
        for config in self.found():
            if key in config.values:
                return config.values[key], config
        return None

    def text(self, key: str) -> str | None:
        """The string value of ``key``, if a file sets it."""
        found = self.lookup(key)
        return None if found is None else str(found[0])

    @property
    def profile_trusted(self) -> bool:
        """Whether the profile the files name comes from the user's own file."""
        found = self.lookup("profile")
        return found is not None and found[1].trusted

    def url_sources(self) -> tuple[UrlSource, ...]:
        """The files' ``base_url`` values as sources of the address, the project's first."""
        return tuple(
            UrlSource(str(f.values["base_url"]), f"{f.path}'s base_url", operator=f.trusted)
            for f in self.found()
            if "base_url" in f.values
        )

    def allowed_base_urls(self) -> tuple[str, ...]:
        """The origins the user's own file allows (a project file may not allow any)."""
        if self.user is None:
            return ()
        listed = self.user.values.get("allowed_base_urls", [])
        return tuple(str(u) for u in listed) if isinstance(listed, list) else ()


NO_CONFIG = ConfigFiles()


def user_config_path(env: Mapping[str, str]) -> Path:
    """The user's config file: under ``$XDG_CONFIG_HOME`` if set (and absolute, as the XDG
    spec requires), else under ``~/.config``."""
    xdg = env.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return base / USER_FILE


def load_config_files(folder: Path, env: Mapping[str, str]) -> ConfigFiles:
    """The project file in ``folder`` and the user's file, each checked; either may be
    absent. Every problem of both is reported at once, as ``file: key: message``."""
    problems: list[str] = []
    project = read_config_file(folder / PROJECT_FILE, trusted=False, problems=problems)
    user = read_config_file(user_config_path(env), trusted=True, problems=problems)
    if problems:
        raise UsageError("\n".join(problems))
    return ConfigFiles(project, user)


def read_config_file(path: Path, *, trusted: bool, problems: list[str]) -> ConfigFile | None:
    """``path`` read and checked (None if there is no such file); problems are appended."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return None
    except OSError as exc:
        problems.append(f"{path}: cannot read the config file: {exc.strerror}")
        return None
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path}: not valid TOML: {exc}")
        return None
    values = {}
    for key, value in data.items():
        problem = _key_problem(key, value, trusted)
        if problem:
            problems.append(f"{path}: {key}: {problem}")
        else:
            values[key] = str(path.parent / value) if _is_path(key, value) else value
    return ConfigFile(path, trusted, values)


def _is_path(key: str, value: object) -> bool:
    """Whether ``value`` names a file, relative to the config file's folder (a profile may
    be a built-in name or a YAML file)."""
    if key == "profile":
        return str(value).lower().endswith((".yaml", ".yml"))
    return key in PATH_KEYS


def _key_problem(key: str, value: object, trusted: bool) -> str | None:
    """What is wrong with ``key = value`` in a user's (``trusted``) or project file."""
    if key not in KEY_TYPES:
        near = difflib.get_close_matches(key, list(KEY_TYPES), n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        return f"unknown setting{hint}; known: {', '.join(KEY_TYPES)}"
    if key in USER_ONLY and not trusted:
        return (
            "decides where the API key goes, so it is read only from flags, the environment "
            "and your own config file, never from a file that travels with the manifest"
        )
    if key in PROJECT_ONLY and trusted:
        return f"belongs in a project's {PROJECT_FILE} beside the manifest, not your own config"
    expected = KEY_TYPES[key]
    # TOML's true is an int to Python: a number setting must not accept it
    if isinstance(value, bool) and expected is not bool:
        return "expected a number or text, not true/false"
    if not isinstance(value, expected):
        return f"expected {_type_name(expected)}, not {type(value).__name__}"
    if isinstance(value, list) and not all(isinstance(v, str) for v in value):
        return "expected a list of strings"
    return None


def _type_name(expected: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "a whole number", bool: "true or false", list: "a list"}
    return "a number" if isinstance(expected, tuple) else names[expected]
