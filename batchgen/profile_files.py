"""Reading profiles: the built-in ones shipped in ``batchgen/profiles/``, or a user's YAML file.

A profile may say ``extends: NAME`` (a built-in profile, or a file beside it) and give only
what differs: mappings are merged key by key (``statuses``, ``extra_fields``, ``simulated``
…), anything else is replaced. Unknown keys are errors, so a misspelt setting never passes
silently for its default.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from batchgen.errors import ProfileError
from batchgen.profile import PROVIDER_STATUSES, ExtraField, Profile
from batchgen.profile_traits import HttpMeaning, NotFound, Simulated, VideoLocation

KNOWN_KEYS = frozenset(
    {
        "name", "extends", "retired", "default_base_url", "auth", "can_list",
        "honours_idempotency_key", "refresh_seconds", "defaults", "max_prompt_chars", "seconds",
        "models", "other_models", "extra_fields", "request", "statuses", "video", "not_found",
        "not_ready", "http", "prices", "simulated", "summary", "max_running",
    }
)  # fmt: skip
MAX_EXTENDS = 8


def load_profile(name_or_path: str) -> Profile:
    """Load a built-in profile by name (``openai``, ``new-api`` …) or a user's YAML file."""
    data = _load_merged(name_or_path, base=None, depth=0)
    return _built(data, source=name_or_path)


def parse_profile(text: str, *, source: str) -> Profile:
    """Build a :class:`Profile` from YAML text; ``source`` names it in error messages."""
    data = _parsed(text, source)
    if "extends" in data:
        parent = _load_merged(str(data["extends"]), base=None, depth=1)
        data = _merge(parent, data)
    return _built(data, source=source)


def is_builtin(name_or_path: str) -> bool:
    """True when ``name_or_path`` names a profile shipped with batchgen, not a user's file."""
    return not _names_a_file(name_or_path) and name_or_path in builtin_profile_names()


def builtin_profile_names() -> list[str]:
    """Names of the profiles shipped with batchgen."""
    folder = resources.files("batchgen").joinpath("profiles")
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def _names_a_file(name_or_path: str) -> bool:
    path = Path(name_or_path)
    return path.suffix in (".yaml", ".yml") or path.exists()


def _load_merged(name_or_path: str, *, base: Path | None, depth: int) -> dict[str, Any]:
    """The profile's YAML mapping with every ``extends:`` above it merged in."""
    if depth > MAX_EXTENDS:
        raise ProfileError(f"{name_or_path}: extends: goes more than {MAX_EXTENDS} levels deep")
    text, source, folder = _read(name_or_path, base)
    data = _parsed(text, source)
    parent = data.get("extends")
    if parent is None:
        return data
    return _merge(_load_merged(str(parent), base=folder, depth=depth + 1), data)


def _read(name_or_path: str, base: Path | None) -> tuple[str, str, Path | None]:
    """Text, name for messages, and folder (for a relative ``extends:``) of one profile."""
    candidate = Path(name_or_path)
    if base is not None and not candidate.is_absolute() and (base / candidate).exists():
        candidate = base / candidate
    if _names_a_file(str(candidate)):
        try:
            return candidate.read_text(encoding="utf-8"), str(candidate), candidate.parent
        except OSError as exc:
            raise ProfileError(f"{candidate}: cannot read profile: {exc.strerror}") from None
    builtin = resources.files("batchgen").joinpath("profiles", f"{name_or_path}.yaml")
    if not builtin.is_file():
        raise ProfileError(
            f"unknown profile {name_or_path!r}: use one of {', '.join(builtin_profile_names())} "
            "or the path of a profile YAML file"
        )
    return builtin.read_text(encoding="utf-8"), name_or_path, None


def _parsed(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: a profile is a YAML mapping")
    unknown = sorted(str(k) for k in data if k not in KNOWN_KEYS)
    if unknown:
        expected = ", ".join(sorted(KNOWN_KEYS))
        raise ProfileError(f"{source}: unknown key(s) {', '.join(unknown)}; expected {expected}")
    return data


def _merge(parent: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """``child`` over ``parent``: mappings merged key by key, other values replaced."""
    merged = dict(parent)
    for key, value in child.items():
        if key == "extends":
            continue
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = _merge(below, value)
        else:
            merged[key] = value
    return merged


def _built(data: Mapping[str, Any], *, source: str) -> Profile:
    try:
        return _profile_from_mapping(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProfileError(f"{source}: malformed profile ({type(exc).__name__}: {exc})") from None


def _profile_from_mapping(data: Mapping[str, Any]) -> Profile:
    auth = data.get("auth") or {}
    request = data.get("request") or {}
    statuses = {str(k).lower(): str(v) for k, v in (data.get("statuses") or {}).items()}
    for ours in PROVIDER_STATUSES:
        statuses.setdefault(ours, ours)
    can_list = bool(data.get("can_list", False))
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
        retired=str(data.get("retired") or ""),
        auth_header=str(auth.get("header", "Authorization")),
        auth_scheme=str(auth.get("scheme") or ""),
        can_list=can_list,
        honours_idempotency_key=bool(data.get("honours_idempotency_key", False)),
        max_prompt_chars=int(data.get("max_prompt_chars", 32000)),
        refresh_seconds=float(data.get("refresh_seconds", 0)),
        max_running=_max_running(data.get("max_running")),
        other_models=data.get("other_models", "refuse") == "allow",
        field_names={str(k): str(v) for k, v in (request.get("fields") or {}).items()},
        image_field=str(request.get("image_field", "input_reference")),
        video=VideoLocation.from_yaml(data.get("video") or {}),
        not_found=NotFound.from_yaml(data.get("not_found") or {}),
        not_ready=frozenset(
            int(s) for s in (data.get("not_ready") or {}).get("statuses", (400, 409))
        ),
        http=HttpMeaning.from_yaml(data.get("http") or {}),
        simulated=Simulated.from_yaml(data.get("simulated") or {}, can_list=can_list),
        summary=str(data.get("summary") or ""),
    )


def _max_running(value: object) -> int | None:
    """``max_running:``: a positive whole number of jobs, or null (no cap)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_running: {value!r} is not a positive whole number or null")
    return value


def _statuses(section: Mapping[str, Any], *, default: tuple[int, ...]) -> frozenset[int]:
    return frozenset(int(s) for s in section.get("statuses", default))


def _extra_field(name: str, spec: Mapping[str, Any]) -> ExtraField:
    values = spec.get("values")
    return ExtraField(
        name=name,
        values=None if values is None else tuple(str(v) for v in values),
        boolean=spec.get("type") == "boolean",
    )
