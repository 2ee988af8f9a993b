"""Where the jobs one :func:`~batchgen.follow.follower.follow_jobs` call followed stand
at its end, what it downloaded, and the exit code that proposes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from batchgen.status import TROUBLE

#: Exit code proposed for a wait that timed out with jobs still running.
EXIT_TIMED_OUT = 4


@dataclass
class FollowTally:
    """Where the followed jobs stand at the end, and what this run downloaded."""

    statuses: Counter[str] = field(default_factory=Counter)  # final status -> jobs
    pending: int = 0  # not final yet (or, when downloading, complete but not downloaded)
    files: int = 0  # files written by this run (every variant)
    bytes: int = 0
    errors: int = 0  # polls or downloads given up on in this run (see the log)
    timed_out: bool = False
    interrupted: bool = False
    held_back_seconds: float = 0.0  # how long the provider's 429s held polls and downloads

    @property
    def followed(self) -> int:
        """Jobs followed in this run."""
        return sum(self.statuses.values()) + self.pending

    @property
    def needs_attention(self) -> bool:
        """A job failed, expired or was lost, or a request was given up on."""
        return self.errors > 0 or any(self.statuses[s] for s in TROUBLE)

    @property
    def exit_code(self) -> int:
        """1 something needs attention; 4 a wait timed out with jobs pending; else 0.

        A stop by a signal is the caller's to report (130/143), before this.
        """
        if self.needs_attention:
            return 1
        return EXIT_TIMED_OUT if self.timed_out and self.pending else 0
