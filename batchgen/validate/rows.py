"""Validating every manifest row against a provider :class:`~batchgen.profile.Profile`.

Every row is checked and every problem reported, so one run shows the user all there is
to fix. Valid rows become :class:`~batchgen.jobs.Job` objects with their stable keys.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path

from batchgen.columns import KNOWN_EXTRA_FIELDS
from batchgen.errors import ManifestError, Problem
from batchgen.jobs import CORE_FIELDS, ImageRef, InvalidRow, Job, KeyMaker
from batchgen.manifest import Manifest, ManifestRow, display_name
from batchgen.manifest.expand import ExpansionError, expand_row
from batchgen.manifest.fit import CACHE_FOLDER, Fit, FitError, check_fit, fit_image
from batchgen.manifest.images import ImageInfo, ImageProblem, inspect_image, resolve_inside
from batchgen.profile import ExtraField, Profile
from batchgen.short_values import ShortValues
from batchgen.validate.columns import check_columns
from batchgen.validate.links import key_clashes, places, remix_cycles, unknown_target
from batchgen.validate.text import escaped, unwritable_message

FIT_HINT = " (image_fit: cover or contain resizes it)"
#: Columns that steer how a row is sent rather than being sent or carried through.
ROW_OPTIONS = ("image_fit", "pad_color", "takes", "remix_of")
_SIZE = re.compile(r"(\d+)\s*[xX×*]\s*(\d+)")


@dataclass(frozen=True)
class Validation:
    """The outcome of validating a manifest: jobs to run, rows that failed, and why."""

    jobs: tuple[Job, ...]
    invalid: tuple[InvalidRow, ...]
    problems: tuple[Problem, ...]
    fitted: tuple[str, ...] = ()  # `file:row: image: fitted …` for rows whose image is resized
    rows: int = 0  # manifest rows, before matrix and takes expanded them into jobs
    warnings: tuple[str, ...] = ()  # worth a look, not a reason to refuse (other_models)

    @property
    def ok(self) -> bool:
        """True when no row has a problem."""
        return not self.problems


@dataclass
class _ImageCache:
    """Each distinct image is inspected once: manifests reuse one image across many rows."""

    root: Path
    by_text: dict[str, Path | ImageProblem] = field(default_factory=dict)
    by_path: dict[Path, ImageInfo | ImageProblem] = field(default_factory=dict)

    def get(self, text: str) -> tuple[Path, ImageInfo]:
        """The resolved path and details of image cell ``text``; raises :class:`ImageProblem`."""
        path = self.by_text.get(text)
        if path is None:
            try:
                path = resolve_inside(self.root, text)
            except ImageProblem as exc:
                path = exc
            self.by_text[text] = path
        if isinstance(path, ImageProblem):
            raise path
        info = self.by_path.get(path)
        if info is None:
            try:
                info = inspect_image(path)
            except ImageProblem as exc:
                info = exc
            self.by_path[path] = info
        if isinstance(info, ImageProblem):
            raise info
        return path, info


@dataclass
class _Row:
    """The checks of one row: what would be sent, and what is wrong with it."""

    row: ManifestRow
    suffix: str = ""  # tells a matrix/take variant from its siblings, e.g. "[style=anime]"
    problems: list[Problem] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    image: ImageRef | None = None
    remix_of: str = ""
    remix_source: str = ""
    fitted: str = ""

    def fail(self, column: str | None, message: str) -> None:
        self.problems.append(Problem(self.row.source, self.row.number, column, message))


@dataclass
class _Validator:
    manifest: Manifest
    profile: Profile
    images: _ImageCache
    extras: dict[str, ExtraField | None]  # None: a known extra this profile does not take
    passthrough: tuple[str, ...]  # the manifest's columns carried into the results as they are
    models: dict[str, str]  # lower-cased -> as the profile spells it: "Sora-2" means sora-2
    ids: frozenset[str] = frozenset()  # the manifest's row ids, which remix_of may name
    cycles: Mapping[str, str] = field(default_factory=dict)  # row id -> its remix cycle
    valid_keys: KeyMaker = field(default_factory=KeyMaker)
    invalid_keys: KeyMaker = field(default_factory=KeyMaker)
    unlisted: dict[str, str] = field(default_factory=dict)  # other_models used -> first place
    short: ShortValues = field(default_factory=ShortValues)  # a size, a campaign: kept once
    sizes: dict[str, str] = field(default_factory=dict)  # a size cell as written -> WxH

    @functools.cached_property
    def field_order(self) -> tuple[str, ...]:
        """The order of a job's fields: the core ones, then the extras."""
        return (*CORE_FIELDS, *self.extras)

    def check(
        self, row: ManifestRow, id_problem: str | None, suffix: str = ""
    ) -> tuple[Job | InvalidRow, _Row]:
        """The row's job (or invalid record), and its checks (problems, fitting)."""
        state = _Row(row, suffix)
        if id_problem:
            state.fail("id", id_problem)
        if not self.check_text(state):
            return self.invalid(state), state  # other checks would quote text none can print
        self.check_prompt(state)
        model = self.check_model(state)
        self.check_seconds(state)
        size = self.check_size(state, model)
        self.check_extras(state)
        self.check_image(state, size)
        self.check_remix(state)
        outcome = self.invalid(state) if state.problems else self.job(state)
        return outcome, state

    def value(self, state: _Row, column: str) -> str | None:
        return state.row.values.get(column) or self.profile.defaults.get(column)

    def check_text(self, state: _Row) -> bool:
        """Every cell can be written as UTF-8 (to the results file and the API)."""
        if all(map(str.isascii, state.row.values.values())):
            return not state.problems  # ASCII always can: the usual row, checked in one go
        for column, text in state.row.values.items():
            why = unwritable_message(text)
            if why is not None:
                state.fail(escaped(column), why)
        return not state.problems

    def check_prompt(self, state: _Row) -> None:
        prompt = state.row.values.get("prompt")
        if not prompt:  # a manifest without the column at all is one problem, not this
            state.fail("prompt", "missing: every row needs a prompt")
            return
        limit = self.profile.max_prompt_chars
        if len(prompt) > limit:
            state.fail(
                "prompt",
                f"is {len(prompt):,} characters; the {self.profile.name} profile allows at most "
                f"{limit:,}",
            )
        state.fields["prompt"] = prompt

    def check_model(self, state: _Row) -> str | None:
        raw = self.value(state, "model")
        if raw is None:
            state.fail("model", f"missing, and the {self.profile.name} profile has no default")
            return None
        model = self.models.get(raw.lower())
        if model is None and self.profile.other_models:
            self.unlisted.setdefault(raw, f"{state.row.source}:{state.row.number}")
            model = raw  # the relay's list changes weekly: sent as written, checked generically
        if model is None:
            allowed = ", ".join(self.profile.models)
            state.fail(
                "model", f"unknown model {raw!r}; the {self.profile.name} profile allows {allowed}"
            )
            return None
        state.fields["model"] = model
        return model

    def check_seconds(self, state: _Row) -> None:
        raw = self.value(state, "seconds")
        if raw is None:
            state.fail("seconds", f"missing, and the {self.profile.name} profile has no default")
            return
        seconds = raw if raw in self.profile.seconds else _whole_number(raw)
        if seconds not in self.profile.seconds:
            allowed = ", ".join(self.profile.seconds)
            state.fail("seconds", f"{raw!r} is not allowed; use one of {allowed}")
            return
        state.fields["seconds"] = seconds

    def check_size(self, state: _Row, model: str | None) -> str | None:
        raw = self.value(state, "size")
        if raw is None:
            state.fail("size", f"missing, and the {self.profile.name} profile has no default")
            return None
        size = self.sizes.get(raw)
        if size is None:  # each way of writing a size is read once, not on each of its rows
            match = _SIZE.fullmatch(raw.strip())
            if match is None:
                state.fail("size", f"{raw!r} is not WIDTHxHEIGHT, e.g. 720x1280")
                return None
            size = self.sizes[raw] = self.short.share(f"{int(match[1])}x{int(match[2])}")
        if model is None:
            return None
        allowed = self.profile.models.get(model)
        if allowed is not None and size not in allowed:
            state.fail(
                "size", f"{size} is not available for {model}; it allows {', '.join(allowed)}"
            )
            return None
        state.fields["size"] = size
        return size

    def check_extras(self, state: _Row) -> None:
        for name, extra in self.extras.items():
            raw = state.row.values.get(name)
            if raw is None:
                continue
            if extra is None:
                state.fail(name, f"the {self.profile.name} profile does not take {name!r}")
                continue
            value = extra.normalise(raw)
            if value is None:
                state.fail(name, f"{raw!r} is not allowed; use {extra.describe_allowed()}")
            else:
                state.fields[name] = value

    def check_image(self, state: _Row, size: str | None) -> None:
        text = state.row.values.get("image")
        if text is None:
            return
        try:
            path, info = self.images.get(text)
        except ImageProblem as exc:
            state.fail("image", f"{text}: {exc.message}")
            return
        actual = f"{info.width}x{info.height}"
        if size is not None and actual != size:
            fit = self.fit_for(state, size)
            if fit is None:
                state.fail("image", f"image is {actual} but size is {size}{FIT_HINT}")
                return
            try:
                path = fit_image(path, info.sha256, fit, self.manifest.folder / CACHE_FOLDER)
                info = inspect_image(path)
            except (FitError, ImageProblem) as exc:
                state.fail("image", f"{text}: {exc}")
                return
            state.fitted = f"fitted from {actual}: {fit.describe()}"
        state.image = ImageRef(
            path=path,
            content_type=info.content_type,
            sha256=info.sha256,
            width=info.width,
            height=info.height,
            size_bytes=info.size_bytes,
        )

    def fit_for(self, state: _Row, size: str) -> Fit | None:
        """How to fit this row's image to ``size``: the row's image_fit, else the manifest's."""
        values = state.row.values
        mode = values.get("image_fit") or self.manifest.image_fit or "none"
        color = values.get("pad_color") or self.manifest.pad_color or "black"
        try:
            check_fit(mode, color)
        except FitError as exc:
            state.fail("image_fit", str(exc))
            return None
        width, height = (int(n) for n in size.split("x"))
        return None if mode == "none" else Fit(mode, width, height, color)

    def check_remix(self, state: _Row) -> None:
        """``remix_of``: another row's id (remixed once it completes) or a provider job id."""
        target = state.row.values.get("remix_of")
        if not target:
            return
        if state.row.values.get("image"):
            state.fail("remix_of", "a remix takes its picture from the video it remixes: no image")
        own_id = state.row.values.get("id", "")
        if target == own_id:
            state.fail("remix_of", "a row cannot remix itself")
        elif own_id in self.cycles:
            state.fail("remix_of", self.cycles[own_id])
        elif target in self.ids:
            state.remix_source = target
        elif (unknown := unknown_target(target, self.ids)) is not None:
            state.fail("remix_of", unknown)
        else:
            state.remix_of = target

    def job(self, state: _Row) -> Job:
        values = state.row.values
        fields = {name: state.fields[name] for name in self.field_order if name in state.fields}
        sha256 = state.image.sha256 if state.image else None
        user_id = values.get("id")
        return Job(
            key=self.valid_keys.key_for(user_id and user_id + state.suffix, fields, sha256),
            row=state.row.number,
            fields=fields,
            image=state.image,
            image_text=values.get("image", ""),
            remix_of=state.remix_of,
            remix_source=state.remix_source,
            passthrough={
                column: self.short.share(values.get(column, "")) for column in self.passthrough
            },
        )

    def invalid(self, state: _Row) -> InvalidRow:
        # Recorded in the results under --skip-invalid: text UTF-8 cannot hold is escaped.
        values = {escaped(column): escaped(text) for column, text in state.row.values.items()}
        user_id = values.get("id")
        return InvalidRow(
            key=self.invalid_keys.key_for(user_id and user_id + state.suffix, values, None),
            row=state.row.number,
            values=values,
            messages=tuple(
                f"{p.column}: {p.message}" if p.column else p.message for p in state.problems
            ),
        )


def validate_manifest(
    manifest: Manifest, profile: Profile, *, image_root: Path | None = None
) -> Validation:
    """Check every row of ``manifest`` against ``profile`` and build its jobs.

    Image cells are relative to ``image_root`` when given, else to the manifest's folder,
    and must stay inside that folder. A manifest without a single row raises
    :class:`ManifestError`: it is the wrong file or sheet far more often than a night with
    nothing to do, and a run that "succeeds" on it would hide that. So does a problem with
    a column's name (a misspelt ``sceonds``, a ``status`` column the results would lose):
    it is wrong for every row, so ``--skip-invalid`` cannot step over it.
    """
    if not manifest.rows:
        message = "has no rows to send (only a header?): is it the right file or sheet?"
        raise ManifestError([Problem(display_name(manifest.path), None, None, message)])
    extras: dict[str, ExtraField | None] = dict.fromkeys(KNOWN_EXTRA_FIELDS)
    extras.update(profile.extra_fields)
    special = frozenset({"id", "image", *CORE_FIELDS, *extras, *ROW_OPTIONS})
    columns = check_columns(manifest, special)
    remixing = "remix_of" in manifest.columns  # else no row can name another's id
    validator = _Validator(
        manifest=manifest,
        profile=profile,
        images=_ImageCache(image_root if image_root is not None else manifest.folder),
        extras=extras,
        passthrough=tuple(column for column in manifest.columns if column not in special),
        models={model.lower(): model for model in profile.models},
        ids=frozenset(_row_ids(manifest.rows) if remixing else ()),
        cycles=remix_cycles(manifest.rows) if remixing else {},
    )
    duplicates = _duplicate_ids(manifest.rows)
    found = _Outcomes()
    for index, row in enumerate(manifest.rows):
        try:
            variants = expand_row(row.values, manifest.expansion)
        except ExpansionError as exc:
            state = _Row(row)
            state.fail(exc.column, exc.message)
            found.add(validator.invalid(state), state)
            continue
        for variant in variants:
            same = variant.values is row.values  # the row as written: nothing to copy
            variant_row = row if same else replace(row, values=dict(variant.values))
            found.add(*validator.check(variant_row, duplicates.get(index), variant.suffix))
    jobs, invalid = found.across_rows()
    if not columns.ok:
        row_problems = (p for p in found.problems if p.column not in columns.covers)
        raise ManifestError([*columns.problems, *row_problems])
    return Validation(
        jobs=tuple(jobs),
        invalid=tuple(invalid),
        problems=tuple(found.problems),
        fitted=tuple(found.fitted),
        rows=len(manifest.rows),
        warnings=_unlisted_warnings(validator),
    )


def _unlisted_warnings(validator: _Validator) -> tuple[str, ...]:
    """One line per model the profile does not list but allows (once per model, not row)."""
    name = validator.profile.name
    return tuple(
        f"{where}: model: {model!r} is not one the {name} profile knows; it allows other "
        "models, so only its size's shape (WIDTHxHEIGHT) and seconds were checked: make sure "
        "the provider has it"
        for model, where in validator.unlisted.items()
    )


@dataclass
class _Outcomes:
    """What the rows became, gathered for the checks that span rows."""

    jobs: list[Job] = field(default_factory=list)
    job_sources: list[str] = field(default_factory=list)  # the file of each job's row
    job_row_ids: list[str] = field(default_factory=list)  # the id of each job's row, or ""
    invalid: list[InvalidRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    fitted: list[str] = field(default_factory=list)

    def add(self, outcome: Job | InvalidRow, state: _Row) -> None:
        """Record one variant's outcome and its problems."""
        row = state.row
        self.problems += state.problems
        if state.fitted:
            self.fitted.append(f"{row.source}:{row.number}: image: {state.fitted}")
        if isinstance(outcome, InvalidRow):
            self.invalid.append(outcome)
            return
        self.jobs.append(outcome)
        self.job_sources.append(row.source)
        self.job_row_ids.append(row.values.get("id", ""))

    def across_rows(self) -> tuple[list[Job], list[InvalidRow]]:
        """The jobs left once no two rows share a key and every remix has its source."""
        clashes = key_clashes(self.jobs, self.job_sources)
        self.problems += clashes.problems
        invalid = self.invalid + clashes.invalid
        if not any(job.remix_source for job in clashes.jobs):
            return clashes.jobs, invalid  # the usual manifest: no row waits for another's
        keys_by_id: dict[str, list[str]] = {}  # row id -> its jobs' keys
        source_of: dict[str, str] = {}  # job key -> its row's file
        for job, row_id, source in zip(self.jobs, self.job_row_ids, self.job_sources, strict=True):
            source_of[job.key] = source
            if job.key not in clashes.keys:  # a row whose key clashed is no remix's source
                keys_by_id.setdefault(row_id, []).append(job.key)
        return _link_remixes(clashes.jobs, invalid, self.problems, keys_by_id, source_of)


def _link_remixes(
    jobs: list[Job],
    invalid: list[InvalidRow],
    problems: list[Problem],
    keys_by_id: Mapping[str, list[str]],
    source_of: Mapping[str, str],
) -> tuple[list[Job], list[InvalidRow]]:
    """Point each remix of a row at that row's key; a row that became several videos (matrix,
    takes) is ambiguous, and one that is invalid cannot be remixed."""
    linked: list[Job] = []
    for job in jobs:
        keys = keys_by_id.get(job.remix_source, []) if job.remix_source else []
        if not job.remix_source or len(keys) == 1:
            linked.append(replace(job, remix_source=keys[0]) if keys else job)
            continue
        why = "is invalid" if not keys else f"became {len(keys)} videos (matrix or takes)"
        message = f"row {job.remix_source!r} {why}: remix one of its videos by job id instead"
        problems.append(Problem(source_of[job.key], job.row, "remix_of", message))
        invalid.append(InvalidRow(job.key, job.row, dict(job.fields), (f"remix_of: {message}",)))
    return linked, invalid


def _row_ids(rows: Sequence[ManifestRow]) -> Iterator[str]:
    """The ``id`` of each row that has one."""
    return (row.values["id"] for row in rows if row.values.get("id"))


def _duplicate_ids(rows: Sequence[ManifestRow]) -> Mapping[int, str]:
    """A problem message for each row (by index) whose ``id`` another row also uses."""
    shared = {user_id for user_id, count in Counter(_row_ids(rows)).items() if count > 1}
    if not shared:
        return {}  # the usual manifest: no row is looked at twice
    by_id: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        user_id = row.values.get("id", "")
        if user_id in shared:
            by_id.setdefault(user_id, []).append(index)
    messages: dict[int, str] = {}
    for user_id, indexes in by_id.items():
        where = places([rows[i] for i in indexes])
        for index in indexes:
            messages[index] = f"duplicate id {user_id!r}: used by rows {where}"
    return messages


def _whole_number(text: str) -> str:
    """ "8", "8.0" and " 8 " all mean "8"; anything else is returned as written."""
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return text
    # The bound keeps "1e999999999" from becoming a billion-digit integer.
    if number.is_finite() and abs(number) < 10**6 and number == number.to_integral_value():
        return str(int(number))
    return text
