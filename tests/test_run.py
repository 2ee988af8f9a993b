"""`batchgen run` end to end: the real CLI against the simulated API on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from batchgen.ledger import Ledger, Record, read_ledger
from batchgen.mock import Faults, MockConfig, RunningMock
from batchgen.profile_files import load_profile
from tests.helpers import API_KEY, Invoke, make_image, write_csv

StartMock = Callable[..., RunningMock]
FAST = ("--rpm", "100000", "--backoff", "0.01", "--concurrency", "8")


def manifest(tmp_path: Path, rows: int = 4, *, image: bool = True) -> Path:
    """A CSV of ``rows`` rows, the second with a real 720x1280 PNG."""
    if image:
        make_image(tmp_path / "img" / "ref.png")
    lines = [["id", "prompt", "image", "seconds", "campaign"]]
    for n in range(1, rows + 1):
        ref = "img/ref.png" if image and n == 2 else ""
        lines.append([f"r{n}", f"prompt number {n}", ref, "8" if n % 2 else "4", "autumn"])
    return write_csv(tmp_path / "batch.csv", lines)


def run(
    invoke: Invoke, mock: RunningMock, path: Path, *extra: str
) -> tuple[int, str, dict[str, Record]]:
    result = invoke("run", path, "--base-url", mock.base_url, *FAST, *extra)
    results = path.with_name(f"{path.stem}.results.csv")
    return result.exit_code, result.output, read_ledger(results)


def test_every_row_becomes_exactly_one_job_and_the_ledger_says_so(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    code, output, states = run(invoke, mock_api, manifest(tmp_path))
    assert code == 0, output
    assert {k: s["status"] for k, s in states.items()} == {f"r{n}": "queued" for n in range(1, 5)}
    assert {s["job_id"] for s in states.values()} == set(mock_api.state.jobs)
    assert mock_api.state.jobs_created == 4
    assert states["r1"]["seconds"] == "8" and states["r1"]["campaign"] == "autumn"
    server_job = mock_api.state.jobs[states["r2"]["job_id"]]
    assert server_job["seconds"] == "4"  # sent as the string the API requires
    assert set(mock_api.state.auth_headers_seen) == {f"Bearer {API_KEY}"}
    assert "results:" in output and "queued 4" in output


def test_rerun_resumes_and_pays_for_nothing_twice(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    path = manifest(tmp_path)
    run(invoke, mock_api, path)
    code, output, _ = run(invoke, mock_api, path)
    assert code == 0
    assert mock_api.state.create_requests == 4
    assert "this run:" not in output  # nothing was sent


def test_invalid_rows_stop_the_run_before_anything_is_sent(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    make_image(tmp_path / "wrong.png", (640, 480))
    rows = [
        ["id", "prompt", "image", "seconds"],
        ["a", "ok", "", "4"],
        ["b", "", "", "4"],
        ["c", "fine", "wrong.png", "5"],
    ]
    path = write_csv(tmp_path / "bad.csv", rows)
    result = invoke("run", path, "--base-url", mock_api.base_url)
    assert result.exit_code == 2
    assert "bad.csv:3: prompt:" in result.stderr
    assert "bad.csv:4: seconds:" in result.stderr
    assert "bad.csv:4: image:" in result.stderr
    assert "Traceback" not in result.output
    assert mock_api.state.create_requests == 0
    assert not (tmp_path / "bad.results.csv").exists()


def test_skip_invalid_records_them_and_sends_the_rest(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    rows = [["id", "prompt", "seconds"], ["a", "ok", "4"], ["b", "bad seconds", "7"]]
    path = write_csv(tmp_path / "m.csv", rows)
    code, _, states = run(invoke, mock_api, path, "--skip-invalid")
    assert code == 1  # a row needs attention
    assert states["a"]["status"] == "queued"
    assert states["b"]["status"] == "invalid" and "seconds" in states["b"]["error_message"]
    assert mock_api.state.jobs_created == 1


def test_final_4xx_is_rejected_with_the_providers_message_and_not_resent(
    tmp_path: Path, invoke: Invoke, start_mock: StartMock
) -> None:
    # batchgen validates against the relay profile; this provider only takes 4/8/12 s.
    mock = start_mock(MockConfig(profile=load_profile("openai")))
    rows = [["id", "prompt", "seconds"], ["a", "ok", "4"], ["b", "too long for it", "15"]]
    path = write_csv(tmp_path / "m.csv", rows)
    code, _, states = run(invoke, mock, path, "--profile", "relay")
    assert code == 1
    assert states["b"]["status"] == "rejected"
    assert states["b"]["error_message"].startswith("HTTP 400: Invalid value: '15'")
    assert states["b"]["error_code"]
    again, _, _ = run(invoke, mock, path, "--profile", "relay")
    assert again == 1 and mock.state.create_requests == 2
    run(invoke, mock, path, "--profile", "relay", "--retry-rejected")
    assert mock.state.create_requests == 3


@pytest.mark.parametrize(
    "faults",
    [
        Faults(seed=1, error_429=0.3, retry_after_seconds=0.01),
        Faults(seed=2, error_500=0.2, error_503=0.2),
        Faults(seed=3, html_502=0.4),
    ],
    ids=["429", "5xx", "html-502"],
)
def test_retryable_answers_are_retried_until_every_row_has_one_job(
    tmp_path: Path, invoke: Invoke, start_mock: StartMock, faults: Faults
) -> None:
    mock = start_mock(MockConfig(faults=faults))
    code, output, states = run(invoke, mock, manifest(tmp_path, rows=12), "--max-attempts", "20")
    assert code == 0, output
    assert all(s["job_id"] for s in states.values())
    assert mock.state.jobs_created == 12
    assert max(int(s["attempts"]) for s in states.values()) > 1


def test_giving_up_records_error_and_a_rerun_tries_again(
    tmp_path: Path, invoke: Invoke, start_mock: StartMock
) -> None:
    mock = start_mock(MockConfig(faults=Faults(seed=4, html_502=1.0)))
    path = manifest(tmp_path, rows=2, image=False)
    code, _, states = run(invoke, mock, path, "--max-attempts", "2")
    assert code == 1
    assert {s["status"] for s in states.values()} == {"error"}
    assert "502 Bad Gateway" in states["r1"]["error_message"]  # an excerpt, not a parse error
    assert "<" not in states["r1"]["error_message"]
    mock.config.faults.html_502 = 0.0
    code, _, states = run(invoke, mock, path)
    assert code == 0 and {s["status"] for s in states.values()} == {"queued"}


def test_lost_answers_are_looked_up_in_the_list_not_resent(
    tmp_path: Path, invoke: Invoke, start_mock: StartMock
) -> None:
    faults = Faults(seed=5, reset_after_create=0.4)
    mock = start_mock(MockConfig(faults=faults, idempotency=False))
    code, output, states = run(invoke, mock, manifest(tmp_path, rows=10))
    assert code == 0, output
    assert mock.state.jobs_created == 10  # every reset create was found, none paid twice
    assert {s["job_id"] for s in states.values()} == set(mock.state.jobs)


def test_without_listing_lost_answers_are_unresolved_until_the_user_says_resend(
    tmp_path: Path, invoke: Invoke, start_mock: StartMock
) -> None:
    relay = load_profile("relay")
    faults = Faults(seed=6, reset_after_create=0.5)
    mock = start_mock(MockConfig(profile=relay, faults=faults, idempotency=False, listing=False))
    path = manifest(tmp_path, rows=8, image=False)
    code, output, states = run(invoke, mock, path, "--profile", "relay")
    unresolved = [k for k, s in states.items() if s["status"] == "unresolved"]
    assert code == 1 and unresolved, output
    assert "resend-unresolved" in states[unresolved[0]]["error_message"]
    created_before = mock.state.jobs_created
    mock.config.faults.reset_after_create = 0.0
    code, output, states = run(invoke, mock, path, "--profile", "relay", "--resend-unresolved")
    assert code == 0
    duplicates = mock.state.jobs_created - 8
    assert duplicates == len(unresolved) and created_before == 8
    assert f"possible duplicates: {duplicates}" in output


def test_a_crash_after_the_intent_is_reconciled_on_rerun(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    path = manifest(tmp_path, rows=3, image=False)
    run(invoke, mock_api, path, "--limit", "1")
    # simulate a crash right after r2's create was sent: the server has the job, the
    # ledger only the intent
    results = tmp_path / "batch.results.csv"
    with Ledger.open(results) as ledger:
        ledger.record("r2", {"status": "submitting", "prompt": "prompt number 2", "row": 3})
    run(invoke, mock_api, path, "--limit", "0")  # nothing sent
    import aiohttp  # a create made by "the crashed process", straight to the server

    async def crashed_create() -> None:
        form = aiohttp.FormData(default_to_multipart=True)
        for name, value in {"prompt": "prompt number 2", "seconds": "4"}.items():
            form.add_field(name, value)
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {API_KEY}"}
            async with session.post(f"{mock_api.base_url}/videos", data=form, headers=headers):
                pass

    import asyncio

    asyncio.run(crashed_create())
    code, _, states = run(invoke, mock_api, path)
    assert code == 0
    assert mock_api.state.jobs_created == 3  # r1, the crashed r2 (found), r3
    assert {s["job_id"] for s in states.values()} == set(mock_api.state.jobs)


def test_a_second_run_on_the_same_results_exits_3(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    path = manifest(tmp_path, rows=1, image=False)
    with Ledger.open(tmp_path / "batch.results.csv"):
        result = invoke("run", path, "--base-url", mock_api.base_url)
    assert result.exit_code == 3
    assert "batch.results.csv.lock" in result.stderr
    assert mock_api.state.create_requests == 0


def test_dry_run_shows_the_plan_and_sends_nothing(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    path = manifest(tmp_path)
    run(invoke, mock_api, path, "--limit", "1")
    result = invoke("run", path, "--base-url", mock_api.base_url, "--dry-run")
    assert result.exit_code == 0
    assert "to send: 3 rows, 16 seconds of video" in result.stdout
    assert "to skip: 1 rows: already submitted" in result.stdout
    assert mock_api.state.create_requests == 1


def test_limit_sends_at_most_n_and_the_next_run_continues(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    path = manifest(tmp_path, rows=5, image=False)
    run(invoke, mock_api, path, "--limit", "2")
    assert mock_api.state.jobs_created == 2
    _, _, states = run(invoke, mock_api, path)
    assert mock_api.state.jobs_created == 5 and len(states) == 5


def test_base_url_from_the_environment_like_the_official_sdk(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    path = manifest(tmp_path, rows=1, image=False)
    result = invoke("run", path, *FAST, env={"OPENAI_BASE_URL": mock_api.base_url})
    assert result.exit_code == 0, result.output
    assert mock_api.state.jobs_created == 1


def test_missing_key_names_the_variable_and_sends_nothing(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    path = manifest(tmp_path, rows=1, image=False)
    result = invoke("run", path, "--base-url", mock_api.base_url, "--api-key-env", "VIDEO_KEY")
    assert result.exit_code == 2
    assert "VIDEO_KEY" in result.stderr
    assert mock_api.state.create_requests == 0


def test_plain_http_to_another_host_is_refused(tmp_path: Path, invoke: Invoke) -> None:
    path = manifest(tmp_path, rows=1, image=False)
    result = invoke("run", path, "--base-url", "http://videos.example.com/v1")
    assert result.exit_code == 2
    assert "clear text" in result.stderr
    assert API_KEY not in result.output


def test_mock_flag_runs_the_whole_pipeline_without_a_key(tmp_path: Path, invoke: Invoke) -> None:
    path = manifest(tmp_path, rows=3)
    result = invoke("run", path, "--mock", *FAST, env={"OPENAI_API_KEY": ""})
    assert result.exit_code == 0, result.output
    assert {s["status"] for s in read_ledger(tmp_path / "batch.results.csv").values()} == {"queued"}


def test_a_refused_lookup_leaves_the_row_unresolved_never_rejected(
    tmp_path: Path, invoke: Invoke, start_mock: StartMock
) -> None:
    # every create's answer is lost, and this provider refuses GET /videos (404)
    faults = Faults(seed=7, reset_after_create=1.0)
    mock = start_mock(MockConfig(faults=faults, idempotency=False, listing=False))
    path = manifest(tmp_path, rows=2, image=False)
    code, _, states = run(invoke, mock, path)
    assert code == 1
    assert {s["status"] for s in states.values()} == {"unresolved"}
    sent = mock.state.create_requests
    run(invoke, mock, path, "--retry-rejected")  # not a way to send them blind
    assert mock.state.create_requests == sent


def test_skip_invalid_never_hides_a_create_that_may_have_been_paid(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    path = manifest(tmp_path, rows=1, image=False)
    results = tmp_path / "batch.results.csv"
    with Ledger.open(results) as ledger:
        ledger.record("r1", {"status": "unresolved", "prompt": "prompt number 1", "row": 2})
    write_csv(path, [["id", "prompt", "seconds"], ["r1", "prompt number 1", "7"]])  # now invalid
    run(invoke, mock_api, path, "--skip-invalid")
    assert read_ledger(results)["r1"]["status"] == "unresolved"


async def test_an_image_gone_after_validation_is_an_error_and_nothing_is_sent(
    tmp_path: Path,
) -> None:
    import asyncio
    import logging

    import aiohttp

    from batchgen.jobs import ImageRef, Job
    from batchgen.mock import running_mock
    from batchgen.plan import SEND, Step
    from batchgen.progress import Progress
    from batchgen.provider.client import VideoClient
    from batchgen.provider.config import Secret
    from batchgen.provider.pacing import Pacer, Throttle
    from batchgen.submit import SubmitSettings, Submitter

    gone = ImageRef(tmp_path / "gone.png", "image/png", "0" * 64, 720, 1280, 10)
    fields = {"model": "sora-2", "prompt": "p", "seconds": "4", "size": "720x1280"}
    job = Job(key="k", row=2, fields=fields, image=gone, image_text="gone.png")
    async with running_mock() as mock, aiohttp.ClientSession() as session:
        client = VideoClient(session, mock.base_url, load_profile("openai"), Secret(API_KEY))
        progress = Progress(1, "submit", interactive=False, logger=logging.getLogger("t"))
        with Ledger.open(tmp_path / "r.csv") as ledger:
            submitter = Submitter(
                client,
                ledger,
                Throttle(Pacer(None), 1),
                SubmitSettings(),
                progress,
                asyncio.Event(),
            )
            await asyncio.wait_for(submitter.run([Step(job, SEND, "new row")]), timeout=30)
            state = ledger.states["k"]
    assert state["status"] == "error" and "cannot read the image" in state["error_message"]
    assert mock.state.create_requests == 0


def test_a_base_url_with_an_impossible_port_is_a_usage_error(
    tmp_path: Path, invoke: Invoke
) -> None:
    path = manifest(tmp_path, rows=1, image=False)
    result = invoke("run", path, "--base-url", "https://videos.example.com:99999/v1")
    assert result.exit_code == 2
    assert "invalid port" in result.stderr
    assert not (tmp_path / "batch.results.csv").exists()
