"""Provider profiles: everything that differs between providers, as data.

A profile is a YAML file. The built-in ones live in ``batchgen/profiles/`` (``openai``,
``relay``); a user may pass the path of their own. Code never branches on a provider's
name: it asks the profile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from batchgen.errors import ProfileError

#: Our own job statuses that the provider reports (see README, "Statuses").
PROVIDER_STATUSES = ("queued", "in_progress", "completed", "failed")
BOOLEAN_WORDS = {
    "true": "true", "yes": "true", "y": "true", "1": "true", "on": "true",
    "false": "false", "no": "false", "n": "false", "0": "false", "off": "false",
}  # fmt: skip


@dataclass(frozen=True)
class ExtraField:
    """A form field beyond the official ones (``style``, ``watermark`` …), sent only when set."""

    name: str
    values: tuple[str, ...] | None = None  # allowed values; None means any
    boolean: bool = False

    def normalise(self, raw: str) -> str | None:
        """The value to send for ``raw``, or None when it is not allowed."""
        if self.boolean:
            return BOOLEAN_WORDS.get(raw.strip().lower())
        if self.values is None:
            return raw
        return raw if raw in self.values else None

    def describe_allowed(self) -> str:
        if self.boolean:
            return "true or false"
        return ", ".join(self.values or ())


@dataclass(frozen=True)
class Profile:
    """What one provider accepts, how it authenticates, and what its status words mean."""

    name: str
    models: Mapping[str, tuple[str, ...]]
    seconds: tuple[str, ...]
    defaults: Mapping[str, str]
    extra_fields: Mapping[str, ExtraField] = field(default_factory=dict)
    statuses: Mapping[str, str] = field(default_factory=dict)
    prices: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    default_base_url: str | None = None
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
    can_list: bool = False
    honours_idempotency_key: bool = False
    max_prompt_chars: int = 32000

    @property
    def all_sizes(self) -> tuple[str, ...]:
        """Every size some model allows, in profile order."""
        return tuple(dict.fromkeys(s for sizes in self.models.values() for s in sizes))

    def auth_value(self, api_key: str) -> str:
        """The value of the auth header for ``api_key`` (``Bearer sk-…`` or the bare key)."""
        return f"{self.auth_scheme} {api_key}" if self.auth_scheme else api_key

    def map_status(self, word: str) -> str:
        """Our status for a provider's word; an unknown word is kept verbatim (and is not final)."""
        return self.statuses.get(word.strip().lower(), word)

    def price_per_second(self, model: str, size: str) -> float | None:
        """USD per second of video for ``model`` at ``size``; None when the profile has none."""
        by_size = self.prices.get(model, {})
        price = by_size.get(size, by_size.get("*"))
        return None if price is None else float(price)

    def estimate_cost(self, fields: Mapping[str, str]) -> float | None:
        """Estimated USD for a row's ``model``, ``size`` and ``seconds``; None without a price."""
        price = self.price_per_second(fields.get("model", ""), fields.get("size", ""))
        try:
            return None if price is None else price * float(fields.get("seconds") or 0)
        except ValueError:
            return None

    def total_cost(self, rows: Iterable[Mapping[str, str]]) -> float | None:
        """Estimated USD of ``rows`` together; None when the profile prices none of them.

        The one place costs are added up: validation, the dry run, the run's summary and
        the report all come here.
        """
        costs = [cost for cost in map(self.estimate_cost, rows) if cost is not None]
        return sum(costs) if costs else None

    def cost_of_jobs(self, states: Iterable[Mapping[str, str]]) -> float | None:
        """Estimated USD of the results rows ``states`` that have a job id: the paid ones."""
        return self.total_cost(state for state in states if state.get("job_id"))


def load_profile(name_or_path: str) -> Profile:
    """Load a built-in profile by name (``openai``, ``relay``) or a user's profile by YAML path."""
    path = Path(name_or_path)
    if _names_a_file(name_or_path):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfileError(f"{path}: cannot read profile: {exc.strerror}") from None
        return parse_profile(text, source=str(path))
    builtin = resources.files("batchgen").joinpath("profiles", f"{name_or_path}.yaml")
    if not builtin.is_file():
        raise ProfileError(
            f"unknown profile {name_or_path!r}: use one of {', '.join(builtin_profile_names())} "
            "or the path of a profile YAML file"
        )
    return parse_profile(builtin.read_text(encoding="utf-8"), source=name_or_path)


def is_builtin(name_or_path: str) -> bool:
    """True when ``name_or_path`` names a profile shipped with batchgen, not a user's file."""
    return not _names_a_file(name_or_path) and name_or_path in builtin_profile_names()


def _names_a_file(name_or_path: str) -> bool:
    path = Path(name_or_path)
    return path.suffix in (".yaml", ".yml") or path.exists()


def builtin_profile_names() -> list[str]:
    """Names of the profiles shipped with batchgen."""
    folder = resources.files("batchgen").joinpath("profiles")
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def parse_profile(text: str, *, source: str) -> Profile:
    """Build a :class:`Profile` from YAML text; ``source`` names it in error messages."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: a profile is a YAML mapping")
    try:
        return _profile_from_mapping(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProfileError(f"{source}: malformed profile ({type(exc).__name__}: {exc})") from None


def _profile_from_mapping(data: dict[str, Any]) -> Profile:
    auth = data.get("auth") or {}
    statuses = {str(k).lower(): str(v) for k, v in (data.get("statuses") or {}).items()}
    for ours in PROVIDER_STATUSES:
        statuses.setdefault(ours, ours)
    return Profile(
        name=str(data["name"]),
        models={str(m): tuple(str(s) for s in sizes) for m, sizes in data["models"].items()},
        seconds=tuple(str(s) for s in data["seconds"]),
        defaults={str(k): str(v) for k, v in data["defaults"].items()},
        extra_fields={
            str(name): _extra_field(str(name), spec or {})
            for name, spec in (data.get("extra_fields") or {}).items()
        },
        statuses=statuses,
        prices={
            str(m): {str(s): float(p) for s, p in by_size.items()}
            for m, by_size in (data.get("prices") or {}).items()
        },
        default_base_url=data.get("default_base_url"),
        auth_header=str(auth.get("header", "Authorization")),
        auth_scheme=str(auth.get("scheme") or ""),
        can_list=bool(data.get("can_list", False)),
        honours_idempotency_key=bool(data.get("honours_idempotency_key", False)),
        max_prompt_chars=int(data.get("max_prompt_chars", 32000)),
    )


def _extra_field(name: str, spec: dict[str, Any]) -> ExtraField:
    values = spec.get("values")
    return ExtraField(
        name=name,
        values=None if values is None else tuple(str(v) for v in values),
        boolean=spec.get("type") == "boolean",
    )
