"""Progress: a tqdm bar on a terminal, plain periodic log lines under cron.

On a terminal the log lines go through :class:`BarSafeHandler` (``tqdm.write``), so they
print above the bars instead of being glued into them.
"""

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

    def at_least(self, count: int) -> None:
        """Grow the total to ``count`` if more items came than expected; else keep it, so
        that the bar's total and ETA do not jump."""
        if count > self.total:
            self.settle(count)

    def settle(self, total: int) -> None:
        """The total is now known to be ``total`` (e.g. fewer jobs came than expected)."""
        if total == self.total:
            return
        self.total = total
        if self._bar is not None:
            self._bar.total = total
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


class BarSafeHandler(logging.StreamHandler[TextIO]):
    """A log handler for a terminal with bars: each line goes through ``tqdm.write``, which
    clears the bars, prints the line and draws them again below it."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record`` above any bars on this handler's stream."""
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # logging must never end the run
            self.handleError(record)
