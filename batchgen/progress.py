"""Progress: a tqdm bar on a terminal, plain periodic log lines under cron."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm

LOG_EVERY_SECONDS = 10.0


class Progress:
    """Counts finished items by outcome and shows them the way the reader can see them.

    ``interactive`` picks the tqdm bar (a person watching a terminal) or a log line every
    ``every`` seconds and at the end (cron mail, a log file).
    """

    def __init__(
        self,
        total: int,
        what: str,
        *,
        interactive: bool,
        logger: logging.Logger,
        stream: TextIO | None = None,
        every: float = LOG_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.what = what
        self.done = 0
        self.outcomes: Counter[str] = Counter()
        self._logger = logger
        self._every = every
        self._clock = clock
        self._last_log = clock()
        self._bar = tqdm(total=total, desc=what, unit="job", file=stream) if interactive else None

    def add(self, count: int = 1) -> None:
        """More items joined while running (jobs handed on by the submitter)."""
        self.total += count
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()

    def advance(self, outcome: str) -> None:
        """One item finished with ``outcome`` (a status word)."""
        self.done += 1
        self.outcomes[outcome] += 1
        if self._bar is not None:
            self._bar.set_postfix_str(self._breakdown(), refresh=False)
            self._bar.update(1)
        elif self._clock() - self._last_log >= self._every:
            self._log_line()

    def close(self) -> None:
        """Finish the bar, or write the last log line."""
        if self._bar is not None:
            self._bar.close()
        elif self.total:
            self._log_line()

    def _log_line(self) -> None:
        self._last_log = self._clock()
        share = 100 * self.done // self.total if self.total else 100
        self._logger.info(
            "%s: %d/%d (%d%%) %s", self.what, self.done, self.total, share, self._breakdown()
        )

    def _breakdown(self) -> str:
        return ", ".join(f"{name} {count}" for name, count in sorted(self.outcomes.items()))
