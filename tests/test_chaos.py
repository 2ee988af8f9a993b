"""Faults from the provider, at scale: the real CLI against the simulated API on 127.0.0.1.

A manifest of 1,000 rows (distinct prompts, some with a reference image) is submitted while
the simulated API answers a seeded 5-10 % of creates with one fault — 429 with Retry-After,
500/503, a CDN's HTML 502, an answer slower than ``--timeout`` (the job *is* made), a
connection reset after the job was made, a 200 whose body is not JSON or has no ``id`` —
alone and all together. Whatever happens, every row must end with a job id or a recorded
reason, and the server must have made exactly one job per row when it can either honour
idempotency keys or list its jobs. Where it can do neither, lost creates end ``unresolved``
and ``--resend-unresolved`` reports exactly the duplicates the server then made. The relay
flavours (new-api, relay, LiteLLM, app relays: no list, no idempotency, Cloudflare's 520,
522 and 524 pages) run on 150 rows: lost creates stay ``unresolved`` until ``batchgen
resolve`` settles them, and then each row has exactly one job.

Timing: high ``--rpm``, tiny ``--backoff``, ``--request-timeout`` 1 s against 2 s slow
answers; each 1,000-row run takes a few seconds on a 2-core machine.
"""

from __future__ import annotations

import csv
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest

from batchgen.ledger import Ledger, Record, read_ledger
from batchgen.mock import Faults, MockConfig, MockThread, RunningMock
from batchgen.profile_files import load_profile
from tests.helpers import Invoke, make_image, write_csv

ROWS = 1000
#: Long enough that a loaded machine never times out a request the server has not handled
#: yet: its job would appear only after the lookup found nothing. A lookup by listing cannot
#: tell such a create from one that never arrived; these tests are not about that race.
TIMEOUT = 1.0
SLOW_SECONDS = 2.0  # longer than TIMEOUT: the client gives up, the job exists
FAST = (
    "--rpm", "1000000", "--backoff", "0.01", "--max-attempts", "40",
    "--request-timeout", str(TIMEOUT), "--concurrency", "32",
)  # fmt: skip
PROVIDER_STATUSES = {"queued", "in_progress", "completed", "failed"}
REASON_STATUSES = {"rejected", "error", "unresolved"}

#: The faults that leave a create's outcome unknown although the server made the job.
JOB_MADE_BUT_ANSWER_LOST = {"reset_after_create": 0.05, "slow": 0.05}
ANSWERED = {"error_429": 0.05, "error_500": 0.03, "error_503": 0.03, "html_502": 0.05}
BAD_BODIES = {"bad_json": 0.03, "missing_id": 0.03}
ALL_TOGETHER = {**ANSWERED, **JOB_MADE_BUT_ANSWER_LOST, **BAD_BODIES}

ALONE = {
    "429": {"error_429": 0.08},
    "5xx": {"error_500": 0.04, "error_503": 0.04},
    "html-502": {"html_502": 0.08},
    "slow": {"slow": 0.06},
    "reset": {"reset_after_create": 0.08},
    "bad-body": {"bad_json": 0.04, "missing_id": 0.04},
}
#: Faults the provider answers: nothing was made, so there is nothing to look up.
ANSWERED_ALONE = ("429", "5xx", "html-502")
#: Faults after which the create may or may not have made a job.
UNKNOWN_ALONE = ("slow", "reset", "bad-body")


@dataclass(frozen=True)
class Provider:
    """What the simulated provider supports, and the matching profile batchgen is given."""

    name: str
    idempotency: bool
    listing: bool


IDEMPOTENT = Provider("idempotency-keys", idempotency=True, listing=False)
LISTING = Provider("listing", idempotency=False, listing=True)
NEITHER = Provider("neither", idempotency=False, listing=False)


def faults(rates: dict[str, float], seed: int, endpoints: frozenset[str] | None = None) -> Faults:
    """Seeded faults at ``rates``; 429s ask for a short Retry-After, slow answers are slower
    than ``--request-timeout``."""
    chosen = Faults(seed=seed, retry_after_seconds=0.05, slow_seconds=SLOW_SECONDS)
    if endpoints is not None:
        chosen.endpoints = endpoints
    for name, rate in rates.items():
        assert hasattr(chosen, name), name
        setattr(chosen, name, rate)
    return chosen


def profile_file(folder: Path, provider: Provider) -> Path:
    """The openai profile, saying what this provider supports (profiles are data)."""
    text = resources.files("batchgen").joinpath("profiles", "openai.yaml").read_text()
    text = re.sub(r"(?m)^name: .*$", f"name: {provider.name}", text)
    text = re.sub(r"(?m)^can_list: .*$", f"can_list: {str(provider.listing).lower()}", text)
    text = re.sub(
        r"(?m)^honours_idempotency_key: .*$",
        f"honours_idempotency_key: {str(provider.idempotency).lower()}",
        text,
    )
    path = folder / f"{provider.name}.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_profile(str(path)).can_list is provider.listing
    return path


def big_manifest(
    folder: Path, rows: int = ROWS, seconds: Sequence[str] = ("4", "8", "12")
) -> tuple[Path, dict[str, str]]:
    """``rows`` rows with distinct prompts (every 50th with an image), their ``seconds``
    taken in turn; key -> prompt."""
    make_image(folder / "img" / "portrait.png", (720, 1280))
    make_image(folder / "img" / "landscape.png", (1280, 720))
    lines = [["id", "prompt", "image", "seconds", "size", "campaign"]]
    prompts: dict[str, str] = {}
    for n in range(rows):
        key, prompt = f"row-{n:04d}", f"chaos prompt {n}: a paper boat on a river, take {n}"
        landscape = n % 3 == 0
        image = ""
        if n % 50 == 0:
            image = "img/landscape.png" if landscape else "img/portrait.png"
        size = "1280x720" if landscape else "720x1280"
        lines.append([key, prompt, image, seconds[n % len(seconds)], size, f"wave-{n % 7}"])
        prompts[key] = prompt
    return write_csv(folder / "chaos.csv", lines), prompts


@pytest.fixture
def serve() -> Iterator[Callable[[MockConfig], RunningMock]]:
    """Simulated APIs on 127.0.0.1, stopped after the test."""
    threads: list[MockThread] = []

    def start(config: MockConfig) -> RunningMock:
        thread = MockThread(config)
        threads.append(thread)
        return thread.__enter__()

    yield start
    for thread in threads:
        thread.__exit__(None, None, None)


def start_provider(
    serve: Callable[[MockConfig], RunningMock], provider: Provider, fault_set: Faults
) -> RunningMock:
    return serve(
        MockConfig(faults=fault_set, idempotency=provider.idempotency, listing=provider.listing)
    )


def run_batch(
    invoke: Invoke, mock: RunningMock, manifest: Path, profile: Path | str, *extra: str
) -> tuple[int, str]:
    result = invoke(
        "run", manifest, "--base-url", mock.base_url, "--profile", profile, *FAST,
        "--max-running", "0", *extra,  # a running cap is not what these nights test
    )  # fmt: skip
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def results_of(manifest: Path) -> Path:
    return manifest.with_name(f"{manifest.stem}.results.csv")


def check_results(results: Path, mock: RunningMock, prompts: dict[str, str]) -> dict[str, Record]:
    """The results file parses both ways, every row has a definite state, and the job ids
    it holds are the server's, one-to-one, each for the row's own prompt."""
    states = read_ledger(results)
    with results.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames is not None and reader.fieldnames[:2] == ["key", "row"]
        latest: dict[str, dict[str, str]] = {}
        for line in reader:
            assert None not in line and None not in line.values(), line  # no ragged lines
            latest[line["key"]] = line
    assert latest == states
    assert set(states) == set(prompts), "a row is missing from the results"
    for key, state in states.items():
        if state["job_id"]:
            assert state["status"] in PROVIDER_STATUSES, state
        else:
            assert state["status"] in REASON_STATUSES and state["error_message"], state
        assert state["prompt"] == prompts[key]
    job_ids = [s["job_id"] for s in states.values() if s["job_id"]]
    assert len(job_ids) == len(set(job_ids)), "two rows claim the same job"
    assert set(job_ids) <= set(mock.state.jobs)
    for key, state in states.items():
        if state["job_id"]:
            assert mock.state.jobs[state["job_id"]]["prompt"] == prompts[key]
    return states


def assert_one_job_per_row(
    mock: RunningMock, prompts: dict[str, str], states: dict[str, Record]
) -> None:
    assert {s["status"] for s in states.values()} <= PROVIDER_STATUSES
    assert mock.state.jobs_created == len(prompts)
    assert Counter(mock.state.job_count_by_prompt().values()) == {1: len(prompts)}
    assert {s["job_id"] for s in states.values()} == set(mock.state.jobs)


def summary_duplicates(output: str) -> int:
    found = re.search(r"possible duplicates: (\d+)", output)
    return int(found[1]) if found else 0


# --------------------------------------------------------------------------- one fault at a time


@pytest.mark.parametrize("name", ANSWERED_ALONE)
def test_answered_faults_are_retried_until_each_row_has_exactly_one_job(
    tmp_path: Path, invoke: Invoke, serve: Callable[[MockConfig], RunningMock], name: str
) -> None:
    manifest, prompts = big_manifest(tmp_path)
    mock = start_provider(serve, LISTING, faults(ALONE[name], seed=11))
    # nothing here is slow: a generous timeout, so that no answer is lost to a loaded machine
    code, output = run_batch(
        invoke, mock, manifest, profile_file(tmp_path, LISTING), "--request-timeout", "10"
    )
    assert code == 0, output
    states = check_results(results_of(manifest), mock, prompts)
    assert_one_job_per_row(mock, prompts, states)
    retried = mock.state.create_requests - ROWS
    assert 0.04 * ROWS < retried < 0.2 * ROWS  # the faults really happened, and were retried
    assert mock.state.requests_by_endpoint["list"] == 0  # an answer is not a lost create


@pytest.mark.parametrize("provider", [IDEMPOTENT, LISTING], ids=lambda p: p.name)
@pytest.mark.parametrize("name", UNKNOWN_ALONE)
def test_lost_answers_never_make_a_second_job(
    tmp_path: Path,
    invoke: Invoke,
    serve: Callable[[MockConfig], RunningMock],
    name: str,
    provider: Provider,
) -> None:
    manifest, prompts = big_manifest(tmp_path)
    mock = start_provider(serve, provider, faults(ALONE[name], seed=12))
    code, output = run_batch(invoke, mock, manifest, profile_file(tmp_path, provider))
    assert code == 0, output
    states = check_results(results_of(manifest), mock, prompts)
    assert_one_job_per_row(mock, prompts, states)
    if provider.listing:
        assert mock.state.requests_by_endpoint["list"] > 0  # lost creates were looked up
    else:
        assert mock.state.create_requests > ROWS  # resent with the same key: no second job
        assert max(mock.state.created_by_idempotency_key.values()) == 1


# --------------------------------------------------------------------------- all together


@pytest.mark.parametrize("provider", [IDEMPOTENT, LISTING], ids=lambda p: p.name)
def test_every_fault_at_once_still_one_job_per_row(
    tmp_path: Path, invoke: Invoke, serve: Callable[[MockConfig], RunningMock], provider: Provider
) -> None:
    manifest, prompts = big_manifest(tmp_path)
    mock = start_provider(serve, provider, faults(ALL_TOGETHER, seed=13))
    code, output = run_batch(invoke, mock, manifest, profile_file(tmp_path, provider))
    assert code == 0, output
    states = check_results(results_of(manifest), mock, prompts)
    assert_one_job_per_row(mock, prompts, states)
    assert max(int(s["attempts"]) for s in states.values()) > 1
    # a rerun finds nothing to do and sends nothing
    before = mock.state.create_requests
    code, output = run_batch(invoke, mock, manifest, profile_file(tmp_path, provider))
    assert code == 0, output
    assert mock.state.create_requests == before


def test_without_idempotency_or_listing_lost_creates_are_unresolved_then_counted_when_resent(
    tmp_path: Path, invoke: Invoke, serve: Callable[[MockConfig], RunningMock]
) -> None:
    """Only faults after which the job exists (plus answered ones): every ``unresolved`` row
    really has a job, so each resend is a real duplicate and the summary must say so."""
    manifest, prompts = big_manifest(tmp_path)
    rates = {**ANSWERED, **JOB_MADE_BUT_ANSWER_LOST}
    mock = start_provider(serve, NEITHER, faults(rates, seed=14))
    profile = profile_file(tmp_path, NEITHER)
    code, output = run_batch(invoke, mock, manifest, profile)
    assert code == 1, output
    states = check_results(results_of(manifest), mock, prompts)
    unresolved = {k for k, s in states.items() if s["status"] == "unresolved"}
    assert {s["status"] for k, s in states.items() if k not in unresolved} <= PROVIDER_STATUSES
    assert 0.05 * ROWS < len(unresolved) < 0.3 * ROWS
    assert "--resend-unresolved" in states[min(unresolved)]["error_message"]
    assert max(mock.state.job_count_by_prompt().values()) == 1  # nothing paid twice yet
    assert mock.state.jobs_created == ROWS  # each unresolved row's create did make its job

    code, output = run_batch(invoke, mock, manifest, profile, "--resend-unresolved")
    assert code == 0, output
    states = check_results(results_of(manifest), mock, prompts)
    assert {s["status"] for s in states.values()} <= PROVIDER_STATUSES
    duplicates = mock.state.jobs_created - ROWS
    assert duplicates >= len(unresolved)  # faults stayed on: resends in this run count too
    assert summary_duplicates(output) == duplicates


def test_without_idempotency_or_listing_bad_bodies_are_unresolved_too(
    tmp_path: Path, invoke: Invoke, serve: Callable[[MockConfig], RunningMock]
) -> None:
    """A 200 that is not a job may or may not have made one: ``unresolved``, never resent
    silently. The summary's count is then an upper bound: exactly the resends whose first
    create turned out to have made nothing are not real duplicates."""
    manifest, prompts = big_manifest(tmp_path)
    mock = start_provider(serve, NEITHER, faults(ALL_TOGETHER, seed=15))
    profile = profile_file(tmp_path, NEITHER)
    code, output = run_batch(invoke, mock, manifest, profile)
    assert code == 1, output
    states = check_results(results_of(manifest), mock, prompts)
    unresolved = {k for k, s in states.items() if s["status"] == "unresolved"}
    assert max(mock.state.job_count_by_prompt().values()) == 1
    made = mock.state.job_count_by_prompt()
    phantoms = sum(1 for key in unresolved if made[prompts[key]] == 0)
    assert phantoms > 0  # some bad bodies came before any job was made

    mock.config.faults = Faults()  # a quiet night: count exactly what the resends make
    code, output = run_batch(invoke, mock, manifest, profile, "--resend-unresolved")
    assert code == 0, output
    check_results(results_of(manifest), mock, prompts)
    assert summary_duplicates(output) == len(unresolved)
    assert mock.state.jobs_created - ROWS == len(unresolved) - phantoms


# --------------------------------------------------------------------------- relay flavours

#: Fewer rows than the official runs (``make test`` stays short), every fault at once plus
#: Cloudflare's pages: 520 and 524 after the job was made, 522 before anything was.
RELAY_ROWS = 150
CLOUDFLARE = {"html_520": 0.03, "html_522": 0.04, "html_524": 0.04}
RELAY_FAULTS = {**ALL_TOGETHER, **CLOUDFLARE}
RELAY_PROFILES = ("new-api", "relay", "litellm", "sora-app")


@pytest.mark.parametrize("provider", [IDEMPOTENT, LISTING], ids=lambda p: p.name)
def test_cloudflare_pages_where_the_provider_lists_or_honours_keys_make_no_second_job(
    tmp_path: Path, invoke: Invoke, serve: Callable[[MockConfig], RunningMock], provider: Provider
) -> None:
    manifest, prompts = big_manifest(tmp_path, RELAY_ROWS)
    mock = start_provider(serve, provider, faults(RELAY_FAULTS, seed=20))
    code, output = run_batch(invoke, mock, manifest, profile_file(tmp_path, provider))
    assert code == 0, output
    states = check_results(results_of(manifest), mock, prompts)
    assert_one_job_per_row(mock, prompts, states)


@pytest.mark.parametrize("name", RELAY_PROFILES)
def test_behind_a_relay_unknown_creates_stay_unresolved_until_resolved_by_hand(
    tmp_path: Path, invoke: Invoke, serve: Callable[[MockConfig], RunningMock], name: str
) -> None:
    """Each built-in relay profile against the simulated API served with its flavour (task
    ids, flat errors, 429 without Retry-After, no list): every create of unknown outcome is
    ``unresolved``, none is resent, none is ``rejected``; once the user has settled each
    from the dashboard (``batchgen resolve``), the next run makes exactly one job per row."""
    profile = load_profile(name)
    manifest, prompts = big_manifest(tmp_path, RELAY_ROWS, profile.seconds)
    mock = serve(MockConfig.for_profile(profile, faults=faults(RELAY_FAULTS, seed=21)))
    code, output = run_batch(invoke, mock, manifest, name)
    assert code == 1, output
    results = results_of(manifest)
    states = check_results(results, mock, prompts)
    unresolved = sorted(k for k, s in states.items() if s["status"] == "unresolved")
    assert {s["status"] for k, s in states.items() if k not in unresolved} <= PROVIDER_STATUSES
    assert 0.05 * RELAY_ROWS < len(unresolved) < 0.4 * RELAY_ROWS
    assert max(mock.state.job_count_by_prompt().values()) == 1  # nothing paid twice

    before = mock.state.create_requests
    code, output = run_batch(invoke, mock, manifest, name)  # the next night resends none
    assert code == 1, output
    assert mock.state.create_requests == before

    made = {job["prompt"]: job_id for job_id, job in mock.state.jobs.items()}  # the dashboard
    for key in unresolved:
        job_id = made.get(prompts[key])
        how = ("--job-id", job_id) if job_id else ("--not-made",)
        assert invoke("resolve", results, key, *how).exit_code == 0
    mock.config.faults = Faults()
    code, output = run_batch(invoke, mock, manifest, name)
    assert code == 0, output
    states = check_results(results, mock, prompts)
    assert_one_job_per_row(mock, prompts, states)


# --------------------------------------------------------------------------- a lower rate limit


class FastClock:
    """The simulated provider's clock at ``factor`` times real speed: its 60-second rate
    window passes in a fraction of a second, so a limit below ``--rpm`` is met in seconds."""

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self.start = time.time()

    def __call__(self) -> float:
        return self.start + (time.time() - self.start) * self.factor


def test_a_rate_limit_below_rpm_is_settled_at_not_hammered(
    tmp_path: Path, invoke: Invoke, serve: Callable[[MockConfig], RunningMock]
) -> None:
    # 10 creates per simulated minute at 120x speed = 1,200 per real minute, below --rpm 1,250.
    # Its Retry-After is in simulated seconds, which the client honours as real ones: each
    # 429 costs a few real seconds, so the run has 60 rows, not 1,000.
    rows = 60
    manifest, prompts = big_manifest(tmp_path, rows)
    mock = start_provider(serve, LISTING, Faults(seed=16, rate_limit_rpm=10))
    mock.state.clock = FastClock(120)
    args = ("--rpm", "1250", "--concurrency", "4", "--max-attempts", "40", "--backoff", "0.01")
    result = invoke("run", manifest, "--base-url", mock.base_url, *args)
    assert result.exit_code == 0, result.output
    states = check_results(results_of(manifest), mock, prompts)
    assert_one_job_per_row(mock, prompts, states)
    assert mock.state.rate_limited >= 1  # the limit was met...
    assert mock.state.rate_limited <= 5  # ...and Retry-After honoured, not retried at once
    assert mock.state.create_requests == rows + mock.state.rate_limited


# --------------------------------------------------------------------------- bugs found here


def test_retries_running_out_after_a_lost_answer_do_not_lead_to_a_blind_resend(
    tmp_path: Path, invoke: Invoke, serve: Callable[[MockConfig], RunningMock]
) -> None:
    manifest, prompts = big_manifest(tmp_path, 5)
    mock = start_provider(serve, LISTING, Faults(seed=17, reset_after_create=1.0))
    profile = profile_file(tmp_path, LISTING)
    code, _ = run_batch(invoke, mock, manifest, profile, "--max-attempts", "1")
    assert code == 1
    assert mock.state.jobs_created == 5  # every create made its job; every answer was lost
    mock.config.faults = Faults()
    code, output = run_batch(invoke, mock, manifest, profile)
    assert code == 0, output
    states = check_results(results_of(manifest), mock, prompts)
    assert mock.state.jobs_created == 5, "a row was paid for twice"
    assert_one_job_per_row(mock, prompts, states)


def test_a_list_answer_that_is_not_a_list_is_not_taken_for_no_jobs(
    tmp_path: Path, invoke: Invoke, serve: Callable[[MockConfig], RunningMock]
) -> None:
    manifest, prompts = big_manifest(tmp_path, 40)
    rates = {"reset_after_create": 0.3, "missing_id": 0.3}
    both = frozenset({"create", "list"})
    mock = start_provider(serve, LISTING, faults(rates, seed=18, endpoints=both))
    code, output = run_batch(
        invoke, mock, manifest, profile_file(tmp_path, LISTING), "--concurrency", "1"
    )
    assert code == 0, output
    states = check_results(results_of(manifest), mock, prompts)
    assert_one_job_per_row(mock, prompts, states)


def test_a_lookup_does_not_adopt_the_job_of_an_identical_row_still_in_flight(
    tmp_path: Path, invoke: Invoke, serve: Callable[[MockConfig], RunningMock]
) -> None:
    """Two rows with the same content are two intended videos. Row ``b`` was being created
    when the last run crashed (its intent is in the results, the server made nothing); row
    ``a`` is sent now and its answer is slow. ``b``'s lookup, paced to run while ``a``'s
    answer is still on its way, sees ``a``'s brand-new job: unowned, same prompt."""
    prompt = "the same shot, wanted twice"
    manifest = write_csv(tmp_path / "twins.csv", [["id", "prompt"], ["a", prompt], ["b", prompt]])
    with Ledger.open(results_of(manifest)) as ledger:
        ledger.record("b", {"row": 3, "prompt": prompt, "status": "submitting", "attempts": 1})
    mock = start_provider(serve, LISTING, Faults(seed=19, slow=1.0, slow_seconds=1.5))
    result = invoke(
        "run", manifest, "--base-url", mock.base_url,
        "--rpm", "120", "--concurrency", "2", "--request-timeout", "10", "--backoff", "0.01",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    states = check_results(results_of(manifest), mock, {"a": prompt, "b": prompt})
    assert states["a"]["job_id"] != states["b"]["job_id"]
    assert mock.state.jobs_created == 2


def test_faults_used_here_sum_to_at_most_one() -> None:
    """The simulated API stacks the rates on one draw: they must leave room for success."""
    for rates in [*ALONE.values(), ALL_TOGETHER]:
        assert sum(rates.values()) <= 1.0
    assert faults(ALL_TOGETHER, seed=0).slow_seconds > TIMEOUT
