"""Checks that span rows: remix sources that can be satisfied, and keys no two rows share.

* ``remix_of`` names another row's ``id``, or a provider job id. A value that is neither
  (``cta`` for the row ``cat``) would wait for ever or be sent to remix nothing, so it is
  an error. A job id is opaque, but every provider's has a shape: a word prefix and an
  underscore before a run of letters and digits with a digit in it (``video_68d7…``,
  ``task_01hx…``), maybe behind a model and a colon (``sora-2:task_01k…``) or in base64
  (LiteLLM's ``video_bGl0…=``), or a UUID. Any other value close to a row's id is taken for that id
  misspelt, and named in the message.
* Rows that remix each other in a cycle (``a`` remixes ``b``, ``b`` remixes ``a``; or a
  longer loop) each wait for another's video: none can ever be sent.
* A row's key is its ``id``, or its id plus the variant (``hero[take2]``) for takes and
  matrix variants, or a hash of what it sends (``h<hash>-1``) without an id. An ``id``
  equal to another row's generated key would make one key two videos: one paid twice,
  the other never made.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from batchgen.errors import Problem
from batchgen.jobs import InvalidRow, Job
from batchgen.manifest import ManifestRow
from batchgen.validate.near_miss import closest

_JOB_ID = re.compile(
    r"(?:[A-Za-z][A-Za-z0-9.-]*:)?"  # an app relay's model, as in sora-2:task_01k…
    r"[A-Za-z][A-Za-z0-9]*_(?=[A-Za-z0-9_+/-]*[0-9+/])[A-Za-z0-9_+/-]{6,}={0,2}"
    r"|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
)


def looks_like_job_id(text: str) -> bool:
    """Whether ``text`` has the shape of a provider's job id (see the module docstring)."""
    return _JOB_ID.fullmatch(text) is not None


def unknown_target(target: str, ids: Iterable[str]) -> str | None:
    """Why ``remix_of: target``, which is no row's id, can never be satisfied; None if it
    looks like a job id."""
    if looks_like_job_id(target):
        return None
    meant = closest(target, ids)
    if meant is not None:
        return f"no row has the id {target!r}: did you mean {meant!r}?"
    return f"{target!r} is neither the id of a row of this manifest nor a provider job id (video_…)"


def places(rows: Sequence[ManifestRow]) -> str:
    """``2, 4`` for rows of one file, ``a.csv:2, m.yaml:4`` across files."""
    one_file = len({row.source for row in rows}) == 1
    return ", ".join(str(row.number) if one_file else f"{row.source}:{row.number}" for row in rows)


def remix_cycles(rows: Sequence[ManifestRow]) -> dict[str, str]:
    """A problem message for each row id in a remix cycle."""
    by_id: dict[str, ManifestRow] = {}
    for row in rows:
        by_id.setdefault(row.values.get("id", ""), row)
    by_id.pop("", None)
    target = {
        row_id: row.values["remix_of"]
        for row_id, row in by_id.items()
        if row.values.get("remix_of") in by_id and row.values["remix_of"] != row_id
    }
    messages: dict[str, str] = {}
    for start in target:
        cycle = _cycle_from(start, target)
        if cycle and start not in messages:
            loop = " -> ".join([*cycle, cycle[0]])
            where = places([by_id[row_id] for row_id in cycle])
            message = (
                f"remix cycle {loop} (rows {where}): each waits for another's video, so "
                "none can ever be sent"
            )
            messages.update(dict.fromkeys(cycle, message))
    return messages


def _cycle_from(start: str, target: Mapping[str, str]) -> list[str]:
    """The cycle ``start`` is on, or [] if following its sources ends."""
    path: list[str] = []
    seen: set[str] = set()
    node: str | None = start
    while node is not None and node not in seen:
        path.append(node)
        seen.add(node)
        node = target.get(node)
    return path[path.index(node) :] if node == start else []


@dataclass(frozen=True)
class KeyClashes:
    """Jobs whose keys are unique, and those that shared a key, now invalid."""

    jobs: list[Job]
    invalid: list[InvalidRow]
    problems: list[Problem]
    keys: frozenset[str]  # the keys two rows had


def key_clashes(jobs: Sequence[Job], sources: Sequence[str]) -> KeyClashes:
    """Refuse every job whose key another job also has, naming both rows.

    ``sources[i]`` is the file ``jobs[i]``'s row came from. One row's variants differ by
    their suffix, so a key seen twice is always two rows.
    """
    counts = Counter(job.key for job in jobs)
    clashed = frozenset(key for key, count in counts.items() if count > 1)
    if not clashed:  # the usual case: no row is built for a message
        return KeyClashes(list(jobs), [], [], clashed)
    by_key: dict[str, list[ManifestRow]] = {key: [] for key in clashed}
    for job, source in zip(jobs, sources, strict=True):
        if job.key in clashed:
            by_key[job.key].append(ManifestRow(job.row, source, {}))
    kept: list[Job] = []
    invalid: list[InvalidRow] = []
    problems: list[Problem] = []
    for job, source in zip(jobs, sources, strict=True):
        if job.key not in clashed:
            kept.append(job)
            continue
        message = (
            f"the key {job.key!r} would be used by rows {places(by_key[job.key])}: an id "
            "may not be a key batchgen makes for another row (<id>[take2], "
            "<id>[style=anime], h<hash>-1); give one of them another id"
        )
        problems.append(Problem(source, job.row, "id", message))
        invalid.append(InvalidRow(job.key, job.row, dict(job.fields), (f"id: {message}",)))
    return KeyClashes(kept, invalid, problems, clashed)
