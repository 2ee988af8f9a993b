"""A simulated ``POST /v1/videos`` light enough not to be the bottleneck of item 2.

``python -m benchmarks.light_server --latency S`` prints its base URL on one line and serves
until its stdin closes, like :mod:`benchmarks.server` (:class:`LightServerProcess` runs it
from the bench). Item 2 measures how well a client hides the API's latency; against
batchgen's mock (aiohttp, parsing and validating every multipart form) on the same two
cores as the client, the server's own CPU decides part of the result. This one does the
least an HTTP/1.1 server can: on asyncio's low-level :class:`asyncio.Protocol`, with
keep-alive, it reads each request's head, skips the body by its ``Content-Length`` or
chunked framing without looking into the multipart, and ``S`` seconds later answers a
create with a queued OpenAI video object under a unique id.

The latency runs from the request's last byte, as a real API can only create the job once
it has the whole request. (The mock's runs from the head: its latency middleware sleeps
before the handler reads the body, so a client that trickles its body out in many small
writes, as the SDK's multipart encoder does, hides that time inside the latency there.)

It answers nothing else of the API (no retrieve, list, content, idempotency, rate limit or
validation): only creates, ``GET /v1/_bench/stats`` (the :class:`ServerStats` fields, with
the CPU time it spent since it began listening) and 404 for any other request, which it
counts. A connection serves one request at a time, as clients that do not pipeline use it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import resource
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from benchmarks.data import IMAGE_SIZE
from benchmarks.server import API_KEY, STATS_PATH, ChildServer, until_stdin_closes

#: What every create answers with: the bench's manifests ask for these (see benchmarks.data),
#: and the body is not read to echo them.
MODEL = "sora-2"
SECONDS = "4"
SIZE = f"{IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}"
#: The longest request head accepted; a client sending more gets a 431 and the door.
MAX_HEAD_BYTES = 64 * 1024
_AUTHORIZATION = f"Bearer {API_KEY}".encode()
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    431: "Request Header Fields Too Large",
}


class LightServerProcess(ChildServer):
    """``with LightServerProcess(latency) as server:`` runs this server in a child process."""

    def __init__(self, latency: float) -> None:
        module = "benchmarks.light_server"
        super().__init__([sys.executable, "-m", module, "--latency", str(latency)])


# --------------------------------------------------------------------------- the child process


class _Body:
    """The part of a request's body still to come, skipped as it arrives.

    With ``Content-Length`` that is a count of bytes; chunked, a walk over the chunk sizes
    (each chunk's data and CRLF skipped whole) to the last, empty chunk and its trailers.
    """

    def __init__(self, length: int, *, chunked: bool) -> None:
        self._left = length  # bytes still to skip: the body's, or the current chunk's
        self._chunked = chunked
        self._trailers = False  # chunked: the last chunk came, its trailers are coming

    def skip(self, buffer: bytearray) -> bool:
        """Drop the body's bytes from the front of ``buffer``; True once it has all come.

        Raises :class:`ValueError` on a chunk size that is not hexadecimal.
        """
        while True:
            taken = min(self._left, len(buffer))
            del buffer[:taken]
            self._left -= taken
            if self._left or not self._chunked:
                return not self._left
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                return False
            line = bytes(buffer[:line_end])
            del buffer[: line_end + 2]
            if self._trailers:
                if not line:  # the blank line after the trailers ends the body
                    return True
                continue
            size = int(line.split(b";", 1)[0], 16)  # a chunk extension is ignored
            if size == 0:
                self._trailers = True
            else:
                self._left = size + 2  # the chunk's data and the CRLF after it


@dataclass(frozen=True, slots=True)
class _Head:
    """What this server needs of a request's head."""

    method: bytes
    path: bytes
    keep_alive: bool
    authorized: bool
    expects_continue: bool
    body: _Body


def _parse_head(raw: bytes) -> _Head:
    """The request line and headers (``raw``: up to the blank line); ValueError if malformed."""
    request_line, *lines = raw.split(b"\r\n")
    method, target, version = request_line.split(b" ")
    headers: dict[bytes, bytes] = {}
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon:
            raise ValueError(f"not a header line: {line!r}")
        headers[name.strip().lower()] = value.strip()
    chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
    length = 0 if chunked else int(headers.get(b"content-length", b"0"))
    if length < 0:
        raise ValueError("negative Content-Length")
    connection = headers.get(b"connection", b"").lower()
    # HTTP/1.1 keeps a connection open unless told otherwise; HTTP/1.0 closes unless told
    keep_alive = connection != b"close" if version == b"HTTP/1.1" else connection == b"keep-alive"
    return _Head(
        method=method,
        path=target.split(b"?", 1)[0],
        keep_alive=keep_alive,
        authorized=headers.get(b"authorization") == _AUTHORIZATION,
        expects_continue=headers.get(b"expect", b"").lower() == b"100-continue",
        body=_Body(length, chunked=chunked),
    )


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Api:
    """The answers and the counts, shared by every connection."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        # a random stem per process and a counter: ids unique within a run and across runs
        self._stem = secrets.token_hex(16)
        self._created_at: list[float] = []
        self._others: collections.Counter[str] = collections.Counter()
        self._cpu_start = _cpu_seconds()

    def start_clock(self) -> None:
        """Count CPU time from now: starting Python and importing are not serving."""
        self._cpu_start = _cpu_seconds()

    def video(self) -> bytes:
        """A new queued job, as OpenAI answers a create."""
        now = time.time()
        self._created_at.append(now)
        video = {
            "id": f"video_{self._stem}{len(self._created_at):016x}",
            "object": "video", "model": MODEL, "status": "queued", "progress": 0,
            "created_at": int(now), "completed_at": None, "expires_at": None, "prompt": None,
            "seconds": SECONDS, "size": SIZE, "remixed_from_video_id": None, "error": None,
        }  # fmt: skip
        return json.dumps(video).encode()

    def other(self, what: str) -> None:
        """Count a request that was not a create (by what was wrong with it)."""
        self._others[what] += 1

    def stats(self) -> bytes:
        """What :meth:`ServerStats.from_json` reads: every create and the CPU spent."""
        creates = len(self._created_at)
        stats: dict[str, Any] = {
            "create_requests": creates,
            "jobs_created": creates,
            "rate_limited": 0,  # it limits nothing
            "status_rate_limited": 0,
            "created_at": self._created_at,
            "cpu_seconds": _cpu_seconds() - self._cpu_start,
            "requests_by_endpoint": {"create": creates, **self._others},
            "jobs": [],  # no lifecycle: nothing is ever retrieved
        }
        return json.dumps(stats).encode()


def _error(code: str, message: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": code, "code": code}}).encode()


class _Connection(asyncio.Protocol):
    """One client connection: read a request, answer it, then read the next."""

    def __init__(self, api: _Api) -> None:
        self._api = api
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._head: _Head | None = None  # the request being read or answered
        self._busy = False  # a request is being answered: the next one waits in the buffer
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._advance()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()  # the client left before its answer: no job is counted
        self._transport = None

    def _advance(self) -> None:
        """Read requests from the buffer while none is being answered."""
        while not self._busy and self._transport is not None:
            try:
                if self._head is None and not self._read_head():
                    return
                assert self._head is not None
                if not self._head.body.skip(self._buffer):
                    return
            except ValueError:
                self._api.other("malformed")
                self._answer(400, _error("bad_request", "malformed request"), keep_alive=False)
                return
            self._busy = True
            self._dispatch(self._head)

    def _read_head(self) -> bool:
        """Take the next request's head from the buffer; False until all of it came."""
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                self._api.other("head too large")
                self._busy = True
                self._answer(431, _error("too_large", "request head too large"), keep_alive=False)
            return False
        self._head = _parse_head(bytes(self._buffer[:end]))
        del self._buffer[: end + 4]
        if self._head.expects_continue and self._transport is not None:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def _dispatch(self, head: _Head) -> None:
        if head.method == b"POST" and head.path == b"/v1/videos":
            if head.authorized:
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(self._api.latency, self._answer_create, head)
                return
            self._api.other("unauthorized")
            self._answer(401, _error("invalid_api_key", "wrong key"), keep_alive=head.keep_alive)
        elif head.method == b"GET" and head.path == b"/v1" + STATS_PATH.encode():
            self._answer(200, self._api.stats(), keep_alive=head.keep_alive)  # not counted
        else:
            self._api.other("unknown")
            self._answer(404, _error("not_found", "not simulated"), keep_alive=head.keep_alive)

    def _answer_create(self, head: _Head) -> None:
        self._timer = None
        self._answer(200, self._api.video(), keep_alive=head.keep_alive)

    def _answer(self, status: int, body: bytes, *, keep_alive: bool) -> None:
        """Send one JSON answer; then read the next request, or close."""
        transport = self._transport
        if transport is None:
            return
        head = f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {len(body)}\r\n"
        if not keep_alive:
            head += "Connection: close\r\n"
        transport.write(head.encode() + b"\r\n" + body)
        if not keep_alive:
            transport.close()
            return
        self._head, self._busy = None, False
        self._advance()


async def _serve(latency: float) -> None:
    loop = asyncio.get_running_loop()
    api = _Api(latency)
    server = await loop.create_server(lambda: _Connection(api), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        api.start_clock()
        print(f"http://127.0.0.1:{port}/v1", flush=True)
        await until_stdin_closes()
    finally:
        server.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until stdin closes."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds before a create's answer"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    asyncio.run(_serve(args.latency))


if __name__ == "__main__":
    main()
