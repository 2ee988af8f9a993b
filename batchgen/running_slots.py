"""At most N jobs running at the provider at once: a profile's ``max_running``, or
``--max-running``.

App relays answer 429 "too many running tasks" once a key has a few jobs in progress
(shared/reference/relays.md): the cap is on jobs running, not on requests per minute.
Rather than draw those 429s (each pauses every worker), a worker about to send a create
waits here, holding no request slot, until fewer than N of the ledger's jobs are running:
sent and not final (:func:`batchgen.status.is_pending`), or being created right now. The
ledger says when a job's state changes (:meth:`batchgen.ledger.Ledger.on_change`), so a
job the follower records as final wakes the waiters; nothing polls.

When nothing follows the jobs (no ``--wait``), none will be seen to finish in this run:
a row that finds the cap full is not sent, and the run says that the next run (or
``--wait``) sends it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from batchgen.errors import StopRequested
from batchgen.ledger import Ledger
from batchgen.profile import Profile
from batchgen.signals import unless_stopped
from batchgen.status import is_pending

logger = logging.getLogger("batchgen")


def running_cap(option: int | None, profile: Profile) -> int | None:
    """The cap a run keeps: ``--max-running`` (0: none), else the profile's ``max_running``."""
    chosen = profile.max_running if option is None else option
    return chosen or None


class RunningSlots:
    """Keeps at most ``limit`` of ``ledger``'s jobs running (``None``: no cap, no waiting).

    ``followed`` says whether something (the follower) records jobs as they end; without
    it a full cap turns rows away at once instead of waiting for ever. Call :meth:`close`
    when done.
    """

    def __init__(
        self, limit: int | None, ledger: Ledger, stop: asyncio.Event, *, followed: bool
    ) -> None:
        self.limit = limit
        self.turned_away = 0  # rows not sent because the cap was full with nothing to free it
        self._said_full = False
        self._stop = stop
        self._followed = followed
        # Without a cap nothing counts the running jobs: a resume of 100,000 rows is spared
        # looking at each.
        self._pending = (
            {key for key, state in ledger.states.items() if is_pending(state)}
            if limit is not None
            else set()
        )
        self._sending: set[str] = set()  # rows with a running slot whose job is not recorded
        self._freed = asyncio.Event()
        self._unsubscribe = ledger.on_change(self._seen) if limit is not None else None

    @property
    def running(self) -> int:
        """Jobs running or being created now (a row in both sets counts once)."""
        return len(self._pending | self._sending)

    async def take(self, key: str) -> None:
        """Hold a running slot for row ``key`` (kept across its retries until
        :meth:`release`), waiting until one is free.

        Raises :class:`StopRequested`, having taken nothing, on a stop signal, or when
        the cap is full and no followed job can free a slot.
        """
        if self.limit is None or key in self._sending:
            return
        while self.running >= self.limit:
            if not self._followed:
                self.turned_away += 1
                raise StopRequested("the running cap is full and nothing follows the jobs")
            self._say_full()
            self._freed.clear()
            await unless_stopped(self._stop, self._freed.wait)
        self._sending.add(key)

    def release(self, key: str) -> None:
        """Row ``key``'s create is over (its job, if any, is in the ledger by now)."""
        if key in self._sending:
            self._sending.discard(key)
            self._freed.set()

    def given_up(self, key: str) -> None:
        """The follower gave up on ``key``'s job for this run: it will not be seen to end,
        so it holds no slot (were it still running, the relay's 429s are waited through)."""
        if key in self._pending:
            self._pending.discard(key)
            self._freed.set()

    def end_following(self) -> None:
        """Nothing records jobs as they end any more: waiting rows give up (not sent)."""
        self._followed = False
        self._freed.set()

    def close(self) -> None:
        """Stop listening to the ledger, and say what the cap held back, if anything."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.turned_away:
            logger.warning(
                "%d row(s) not sent: %d job(s) running, and the provider takes at most %d "
                "at once (max_running, --max-running), with no job followed to its end to "
                "free a slot (no --wait, or its --timeout ran out). The next run sends "
                "them; with --wait a run sends them as jobs finish",
                self.turned_away,
                self.running,
                self.limit,
            )

    def _say_full(self) -> None:
        """Once a run: why creates have stopped for a while (they wait, they do not fail)."""
        if not self._said_full:
            self._said_full = True
            logger.info(
                "%d job(s) running, the most the provider takes at once (max_running): "
                "the other rows are sent as jobs finish",
                self.running,
            )

    def _seen(self, key: str, state: Mapping[str, str]) -> None:
        if is_pending(state):
            self._pending.add(key)
        elif key in self._pending:  # a job left the running set: a slot may be free
            self._pending.discard(key)
            self._freed.set()
