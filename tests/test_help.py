"""Help that teaches: options in sections, commands in workflow order with an example,
poll and download offering only what they use, shell completion that works."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.helpers import Invoke

SECTIONS = ("What to send", "Where to", "How fast", "Following", "Output", "Safety")


def sections(help_text: str) -> dict[str, list[str]]:
    """The options under each heading of a command's --help, by heading."""
    found: dict[str, list[str]] = {}
    heading = None
    for line in help_text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            heading = line[:-1]
            found[heading] = []
        elif heading and (option := re.match(r"  (-\w, )?(--[\w-]+)", line)):
            found[heading].append(option.group(2))
    return found


def test_run_help_groups_its_options_by_what_they_decide(invoke: Invoke) -> None:
    result = invoke("run", "--help")
    assert result.exit_code == 0
    found = sections(result.stdout)
    assert [h for h in found if h != "Usage"] == [*SECTIONS, "Other options"]
    assert {"--sheet", "--limit", "--skip-invalid"} <= set(found["What to send"])
    assert {"--profile", "--base-url", "--api-key-env", "--allow-base-url"} <= set(
        found["Where to"]
    )
    assert {"--rpm", "--concurrency", "--max-attempts", "--backoff"} <= set(found["How fast"])
    assert {"--wait", "--timeout", "--poll-rpm", "--download"} <= set(found["Following"])
    assert {"--out", "--summary-json", "--log-file"} <= set(found["Output"])
    assert {"--max-cost", "--max-jobs", "--dry-run", "--grace"} <= set(found["Safety"])
    assert found["Other options"] == ["--help"]  # every real option has its section


def test_poll_help_offers_only_what_poll_uses(invoke: Invoke) -> None:
    result = invoke("poll", "--help")
    assert result.exit_code == 0
    offered = {option for options in sections(result.stdout).values() for option in options}
    assert {"--wait", "--timeout", "--poll-rpm", "--poll-interval", "--base-url"} <= offered
    assert not offered & {"--variant", "--name", "--download", "--to", "--rpm", "--dry-run"}
    # its defaults are the ones poll uses: the record run left, not the manifest or openai
    flat = " ".join(result.stdout.split())
    assert "default: the one run used, recorded beside RESULTS" in flat
    assert "default: where run sent the jobs, recorded beside RESULTS" in flat


def test_download_help_offers_the_file_options(invoke: Invoke) -> None:
    result = invoke("download", "--help")
    offered = {option for options in sections(result.stdout).values() for option in options}
    assert {"--to", "--variant", "--name", "--wait", "--poll-rpm"} <= offered
    assert not offered & {"--rpm", "--dry-run", "--max-cost"}


def test_commands_are_listed_in_workflow_order_each_with_an_example(invoke: Invoke) -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    listed = re.findall(r"^  ([a-z][a-z-]*)  ", result.stdout, flags=re.MULTILINE)
    workflow = ["config", "validate", "run", "poll", "download", "report"]
    assert [name for name in listed if name in workflow] == workflow
    assert listed.index("profiles") < listed.index("validate")
    examples = re.findall(r"e\.g\. batchgen ([a-z-]+)", result.stdout)
    assert examples == listed
    assert "_BATCHGEN_COMPLETE=bash_source batchgen" in " ".join(result.stdout.split())


@pytest.mark.parametrize(
    ("typed", "offered"), [("batchgen po", "poll"), ("batchgen run --dry", "--dry-run")]
)
def test_shell_completion_completes_commands_and_options(typed: str, offered: str) -> None:
    words = typed.split(" ")
    env = {
        **os.environ,
        "_BATCHGEN_COMPLETE": "bash_complete",
        "COMP_WORDS": typed,
        "COMP_CWORD": str(len(words) - 1),
    }
    done = subprocess.run(
        [sys.executable, "-c", "from batchgen.cli import main; main()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert f"plain,{offered}" in done.stdout.splitlines()
