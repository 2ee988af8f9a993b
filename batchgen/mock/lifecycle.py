"""How a simulated job moves over time: created queued, advanced on the state's clock to
completed (or failed by the fail marker), then expired; and its public view."""

from __future__ import annotations

import hashlib
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
    digest = hashlib.sha256(f"{config.faults.seed}:{runtime.sequence}".encode()).hexdigest()
    job_id = f"{config.id_prefix}{digest[:24]}"
    now = state.clock()
    state.jobs[job_id] = {
        "id": job_id, "object": "video", "model": fields["model"], "status": "queued",
        "progress": 0, "created_at": int(now), "completed_at": None, "expires_at": None,
        "prompt": fields["prompt"], "size": fields["size"], "seconds": fields["seconds"],
        "remixed_from_video_id": remixed_from, "error": None,
        "_started": now, "_sequence": runtime.sequence, "_finished": None,
        "_fields": dict(fields),
    }  # fmt: skip
    state.jobs_created += 1
    return job_id


def advance(job: dict[str, Any], config: MockConfig, now: float) -> None:
    """Move a job along its lifecycle as seen at ``now``; progress rises linearly."""
    if job["status"] in ("completed", "failed"):
        return
    duration = config.job_duration
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
    """The public VideoResource, with the status in the provider's words."""
    public = {key: value for key, value in job.items() if not key.startswith("_")}
    public["status"] = config.status_words.get(job["status"], job["status"])
    return public


def lookup(request: web.Request) -> dict[str, Any]:
    """The job named in the path, advanced to now, or a 404."""
    state, config = request.app[STATE_KEY], request.app[CONFIG_KEY]
    job_id = request.match_info["video_id"]
    job = state.jobs.get(job_id)
    if job is None:
        raise bad("video_id", "video_not_found", f"Video with id '{job_id}' not found.", 404)
    advance(job, config, state.clock())
    return job
