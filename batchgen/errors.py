"""The exceptions batchgen raises, each carrying what the user needs to fix the problem.

Every exception has an ``exit_code``: the CLI turns any :class:`BatchgenError` into its
message on stderr and that exit code, never a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, located as the user sees it in their spreadsheet."""

    file: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.row is None else f"{self.file}:{self.row}"
        return (
            f"{where}: {self.column}: {self.message}" if self.column else f"{where}: {self.message}"
        )


class BatchgenError(Exception):
    """Base of everything batchgen raises on purpose."""

    exit_code = 1


class UsageError(BatchgenError):
    """The command line or a configuration value is wrong."""

    exit_code = 2


class NoBaseUrlError(UsageError):
    """Nowhere to send to: no address given, and the profile has no default (any more)."""


class ProfileError(UsageError):
    """A provider profile could not be found or is malformed."""


class ManifestError(BatchgenError):
    """The manifest (or a file it names) has problems; nothing was sent."""

    exit_code = 2

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        lines = [str(p) for p in self.problems]
        super().__init__("\n".join(lines) if lines else "invalid manifest")


class LedgerError(BatchgenError):
    """The results file cannot be created, read or written."""

    exit_code = 2


class LockHeldError(BatchgenError):
    """Another batchgen run holds the lock on this results file."""

    exit_code = 3


class ApiError(BatchgenError):
    """The provider answered, or failed to answer, in a way that stops this request."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retry_after = retry_after


class RetryableError(ApiError):
    """Worth trying again later: 429, 5xx, or a connection that failed before sending."""


class RateLimitedError(RetryableError):
    """429: every worker pauses, not only the one that got it."""


class OutcomeUnknownError(RetryableError):
    """The request was sent but its answer was lost (timeout, reset): the job may exist."""


class RejectedError(ApiError):
    """A final answer (4xx other than 429): sending the same request again cannot succeed."""


class NotFoundError(RejectedError):
    """404: the provider does not know this job."""


class BadResponseError(OutcomeUnknownError):
    """A 2xx answer whose body is not the JSON we expect (a relay's CDN page, no ``id``).

    For a create this is an unknown outcome: the provider may have made the job anyway.
    """


class UnresolvedError(ApiError):
    """A create whose outcome could not be looked up; resending it might pay twice."""


class ProviderCheckError(BatchgenError):
    """``doctor`` could not check the provider: it cannot be reached, or it refused the key."""

    exit_code = 2


class StopRequested(BatchgenError):
    """A stop signal arrived while waiting (for a request slot, a retry, a source row):
    the request that waited was not sent."""
