"""How a simulated job moves over time: created queued, advanced on the state's clock to
completed (or failed by the fail marker), then expired; as a lagging provider shows it
(its last refresh tick); and its public view, in the provider's words."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from batchgen.mock.config import MockConfig
from batchgen.mock.failures import bad
from batchgen.mock.state import CONFIG_KEY, RUNTIME_KEY, STATE_KEY


def new_job(app: web.Application, fields: Mapping[str, str], remixed_from: str | None) -> str:
    """Create a queued job from validated ``fields``; returns its (seeded) id."""
    state, config, runtime = app[STATE_KEY], app[CONFIG_KEY], app[RUNTIME_KEY]
    runtime.sequence += 1
    job_id = config.id_prefix + _seeded_chars(f"{config.faults.seed}:{runtime.sequence}", config)
    now = state.clock()
    state.jobs[job_id] = {
        "id": job_id, "object": "video", "model": fields["model"], "status": "queued",
        "progress": 0, "created_at": int(now), "completed_at": None, "expires_at": None,
        "prompt": fields["prompt"], "size": fields["size"], "seconds": fields["seconds"],
        "remixed_from_video_id": remixed_from, "error": None,
        "_started": now, "_sequence": runtime.sequence, "_finished": None,
        "_duration": _drawn_duration(config, runtime.sequence), "_fields": dict(fields),
    }  # fmt: skip
    state.jobs_created += 1
    return job_id


def _drawn_duration(config: MockConfig, sequence: int) -> float | None:
    """This job's own duration when durations are spread, drawn from an RNG keyed on the
    seed and the job's sequence (the same job takes as long in every run); None when they
    are not, so that the config's ``job_duration`` applies and may still be changed."""
    low = config.job_duration_min
    if low is None:
        return None
    rng = random.Random(f"{config.faults.seed}:duration:{sequence}")
    return rng.uniform(low, config.job_duration)


def job_duration(job: dict[str, Any], config: MockConfig) -> float:
    """How long ``job`` takes from its creation to completion."""
    own = job.get("_duration")
    return config.job_duration if own is None else float(own)


def _seeded_chars(seed: str, config: MockConfig) -> str:
    """``config.id_length`` hex characters, the same for the same seed and sequence."""
    chars, block = hashlib.sha256(seed.encode()).hexdigest(), 1
    while len(chars) < config.id_length:  # longer ids than one digest: chain more
        chars += hashlib.sha256(f"{seed}:{block}".encode()).hexdigest()
        block += 1
    return chars[: config.id_length]


def observed_at(config: MockConfig, now: float) -> float:
    """The moment a provider's answer reflects: ``now``, or its last refresh tick
    (new-api serves retrieve from its database, refreshed every ``refresh_seconds``)."""
    tick = config.refresh_seconds
    return now if tick <= 0 else math.floor(now / tick) * tick


def advance(job: dict[str, Any], config: MockConfig, now: float) -> None:
    """Move a job along its lifecycle as seen at ``now``; progress rises linearly."""
    if job["status"] in ("completed", "failed") or now < float(job["_started"]):
        return
    duration = job_duration(job, config)
    elapsed = now - float(job["_started"])
    if duration > 0 and elapsed < duration:
        job["progress"] = min(99, int(100 * elapsed / duration))
        job["status"] = "in_progress" if job["progress"] > 0 else "queued"
        return
    # job_duration 0: completed at the first look after the create answered.
    _finish(job, config, float(job["_started"]) + duration if duration > 0 else now)


def _finish(job: dict[str, Any], config: MockConfig, finished: float) -> None:
    job["_finished"] = finished
    job["completed_at"] = int(finished)
    if config.fail_marker and config.fail_marker in str(job["prompt"]):
        job["status"] = "failed"
        job["error"] = {
            "code": "moderation_blocked",
            "message": "Your request was blocked by our moderation system.",
        }
        return
    job["status"], job["progress"] = "completed", 100
    job["expires_at"] = int(finished + lifetime(config))


def lifetime(config: MockConfig) -> float:
    """Seconds a completed job's assets stay downloadable."""
    return 3600.0 if config.expires_after is None else config.expires_after


def is_expired(job: dict[str, Any], config: MockConfig, now: float) -> bool:
    """Whether a completed job's assets have expired at ``now``."""
    finished = job["_finished"]
    return finished is not None and now >= float(finished) + lifetime(config)


def view(job: dict[str, Any], config: MockConfig) -> dict[str, Any]:
    """The public VideoResource, with the status and progress in the provider's words."""
    public = {key: value for key, value in job.items() if not key.startswith("_")}
    public["status"] = config.status_words.get(job["status"], job["status"])
    if config.progress_format == "percent":
        public["progress"] = f"{job['progress']}%"
    if config.task_id:
        public["task_id"] = job["id"]
    return public


def lookup(request: web.Request) -> dict[str, Any]:
    """The job named in the path, advanced to what the provider shows now, or its answer
    for an unknown id (OpenAI's 404, new-api's 400 ``task_not_exist``)."""
    state, config = request.app[STATE_KEY], request.app[CONFIG_KEY]
    job_id = request.match_info["video_id"]
    job = state.jobs.get(job_id)
    if job is None:
        message = f"Video with id '{job_id}' not found."
        raise bad("video_id", config.not_found_code, message, config.not_found_status)
    advance(job, config, observed_at(config, state.clock()))
    return job
