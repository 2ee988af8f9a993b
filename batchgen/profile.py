"""Provider profiles: everything that differs between providers, as data.

A profile is a YAML file (read by :mod:`batchgen.profile_files`). The built-in ones live in
``batchgen/profiles/`` (``openai``, ``new-api``, ``relay``, ``litellm``, ``sora-app``); a user
may pass the path of their own. Code never branches on a provider's name: it asks the
profile, and the parts of it that describe behaviour (:mod:`batchgen.profile_traits`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from batchgen.profile_traits import HttpMeaning, NotFound, Simulated, VideoLocation

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
    retired: str = ""  # why the provider's default address no longer answers, if it does not
    refresh_seconds: float = 0.0  # how often a job's status can change there: polls no faster
    max_running: int | None = None  # jobs a key may have running there at once (None: no cap)
    other_models: bool = False  # models beyond ``models`` are allowed, checked generically
    field_names: Mapping[str, str] = field(default_factory=dict)  # ours -> the provider's
    image_field: str = "input_reference"  # the multipart part that carries the image
    video: VideoLocation = field(default_factory=VideoLocation)
    not_found: NotFound = field(default_factory=NotFound)
    not_ready: frozenset[int] = frozenset({400, 409})  # content of an unfinished job
    http: HttpMeaning = field(default_factory=HttpMeaning)
    simulated: Simulated = field(default_factory=Simulated)
    summary: str = ""  # what the profile is for, one line (``batchgen profiles``)

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
