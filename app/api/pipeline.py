"""One request with a body, start to finish: read, inflate, decode, compute, encode.

Every POST that brings work goes through :func:`handle`: the /v1 scoring routes,
/v1/aggregates/merge, /v1/report and /v2 inference. A route says what its body means
with :class:`Steps` (decode, compute, encode); the pipeline does the rest, the same
for every route, under one deadline (504):

1. read the body, at most ``max_body_bytes`` (413); its bytes count against the
   worker's budget (503), not a work slot; a stalled body ends with 408;
2. take a work slot (503 when none is free) and run the next steps on the event loop
   for a small plain body, else in a worker thread;
3. inflate a gzip or deflate body, at most ``max_decompressed_bytes`` (413);
4. decode it, checking rank, element count (413) and nesting (422) as it goes;
5. compute: validate the options, run the core;
6. encode the answer, which the route sends.

A worker thread cannot be cancelled, so the deadline is also checked between steps.
:func:`serve_body` is the pipeline for a JSON or msgpack body (every /v1 route).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Protocol, TypeVar, cast

import anyio
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from app.api.backpressure import SMALL, Capacity, Reservation, connection_of
from app.api.deadlines import within
from app.api.errors import (
    ERROR_CODEC,
    BodyTimeout,
    BodyTooLarge,
    DeadlineExceeded,
    NestingTooDeep,
    RankTooHigh,
    TooManyElements,
)
from app.api.schemas import PREDICTION_FIELDS
from app.codecs import (
    Buffer,
    Codec,
    DecodedBody,
    Decoder,
    codec_for_accept,
    codec_for_content_type,
    encode_parts,
    inflate,
    is_identity,
    reader_for,
)
from app.observability.stats import STATS_KEY, RequestStats
from app.settings import Settings

__all__ = [
    "Answer",
    "Head",
    "Limits",
    "Steps",
    "check_shape",
    "count_samples",
    "handle",
    "read_body",
    "read_head",
    "run_sized",
    "run_steps",
    "serve_body",
]

D = TypeVar("D")
R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """The limits of one application, from its settings."""

    max_body_bytes: int
    max_decompressed_bytes: int
    max_elements: int
    max_rank: int
    max_json_depth: int
    timeout: float
    inline_body_bytes: int
    body_timeout: float
    min_body_rate: int
    compute_threads: int = 1

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_body_bytes=settings.max_body_bytes,
            max_decompressed_bytes=settings.max_decompressed_bytes,
            max_elements=settings.max_elements,
            max_rank=settings.max_rank,
            max_json_depth=settings.max_json_depth,
            timeout=settings.request_timeout_seconds,
            inline_body_bytes=settings.inline_body_bytes,
            body_timeout=settings.body_timeout_seconds,
            min_body_rate=settings.min_body_rate,
            compute_threads=settings.compute_threads,
        )


@dataclass(frozen=True)
class Head:
    """The request headers the pipeline reads, first occurrence of each."""

    content_type: str | None = None
    accept: str | None = None
    content_encoding: str | None = None
    # Content-Length when it is a plain decimal number; None for a chunked body.
    content_length: int | None = None
    # Inference-Header-Content-Length: /v2's JSON header before binary tensors.
    inference_header_length: str | None = None


_HEADERS = {
    b"content-type": "content_type",
    b"accept": "accept",
    b"content-encoding": "content_encoding",
    b"content-length": "content_length",
    b"inference-header-content-length": "inference_header_length",
}


def read_head(scope: Scope) -> Head:
    """The :class:`Head` of a request, from its ASGI scope."""
    found: dict[str, Any] = {}
    for name, value in scope["headers"]:
        field = _HEADERS.get(name)
        if field is not None and field not in found:
            found[field] = value.decode("latin-1")
    length = found.pop("content_length", None)
    if length is not None and length.isascii() and length.isdigit():
        found["content_length"] = int(length)
    return Head(**found)


@dataclass(frozen=True)
class Answer:
    """An encoded answer: its body in pieces (large tensors are views), its headers."""

    parts: list[Buffer]
    media_type: str
    headers: tuple[tuple[str, str], ...] = ()

    async def send(self, send: Send, status: int = 200) -> None:
        """Send it as an ASGI response, piece by piece."""
        headers = [
            (b"content-type", self.media_type.encode("latin-1")),
            (b"content-length", str(sum(map(len, self.parts))).encode("ascii")),
            *((name.encode("latin-1"), value.encode("latin-1")) for name, value in self.headers),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        last = len(self.parts) - 1
        for index, part in enumerate(self.parts):
            await send({"type": "http.response.body", "body": part, "more_body": index < last})


class Steps(Protocol[D, R]):
    """What a route does with its body: decode it, compute the answer, encode it."""

    def decode(self, body: bytes, limits: Limits, stats: RequestStats) -> D: ...

    def compute(self, decoded: D, limits: Limits) -> R: ...

    def encode(self, result: R) -> Answer: ...


OnData = Callable[[bytearray, int], None]


async def handle(
    scope: Scope, receive: Receive, head: Head, steps: Steps[D, R], on_data: OnData | None = None
) -> Answer:
    """Read the body and run ``steps`` on it in a work slot, all under the deadline.

    ``on_data`` sees a body of declared length fill its buffer (a JSON body is parsed
    while it arrives).

    Raises:
        DeadlineExceeded: the deadline passed (504).
        Overloaded: the byte budget or the work slots are full (503).
        BodyTooLarge, BodyTimeout: 413, 408; and every error of the steps.
    """
    application = scope["app"]
    limits: Limits = application.state.limits
    capacity: Capacity = application.state.capacity
    stats: RequestStats = scope.get(STATS_KEY) or RequestStats()
    deadline = perf_counter() + limits.timeout

    async def read_then_work() -> Answer:
        body = await _read(scope, receive, head, limits, capacity, on_data)
        return await run_steps(
            steps, body, head.content_encoding, limits, capacity, stats, deadline
        )

    try:
        return await within(limits.timeout, read_then_work())
    except TimeoutError as exc:
        raise DeadlineExceeded(limits.timeout) from exc


async def run_steps(
    steps: Steps[D, R],
    body: bytes,
    content_encoding: str | None,
    limits: Limits,
    capacity: Capacity,
    stats: RequestStats,
    deadline: float,
    seconds: float | None = None,
) -> Answer:
    """Run ``steps`` on a body already read, in a work slot: steps 2 to 6 above.

    The caller bounds the wait by the request's ``deadline`` (a ``perf_counter`` time,
    ``seconds`` after the request began: ``limits.timeout`` unless given); a worker
    thread, which cannot be cancelled, stops at its next step past it.

    Raises:
        DeadlineExceeded: the deadline passed in a worker thread (504).
        Overloaded: no work slot is free (503); and every error of the steps.
    """

    def check_deadline(now: float) -> None:
        # A worker thread gives up once its answer would be discarded.
        if now > deadline:
            raise DeadlineExceeded(limits.timeout if seconds is None else seconds)

    def work(body: bytes) -> Answer:
        began = perf_counter()
        if content_encoding is not None:
            body = inflate(body, content_encoding, limits.max_decompressed_bytes)
        decoded = steps.decode(body, limits, stats)
        decoded_at = perf_counter()
        stats.decode = decoded_at - began
        check_deadline(decoded_at)
        result = steps.compute(decoded, limits)
        computed_at = perf_counter()
        stats.compute = computed_at - decoded_at
        check_deadline(computed_at)
        answer = steps.encode(result)
        stats.encode = perf_counter() - computed_at
        return answer

    with capacity:
        return await run_sized(work, body, content_encoding, limits)


async def run_sized(
    work: Callable[[bytes], T], body: bytes, content_encoding: str | None, limits: Limits
) -> T:
    """Run ``work(body)`` on the event loop for a small plain body, else in a worker thread.

    A small request waits longer for a thread and the GIL than it takes to run
    (bench/README.md, design decisions). A compressed body may inflate to anything.
    """
    if len(body) <= limits.inline_body_bytes and is_identity(content_encoding):
        return work(body)
    # On timeout the thread is abandoned; handle's work stops at its next step.
    return await anyio.to_thread.run_sync(work, body, abandon_on_cancel=True)


# A JSON or msgpack body: the codecs decode and encode, the route computes.

Compute = Callable[[DecodedBody, int], Mapping[str, Any]]
Render = Callable[[Mapping[str, Any]], bytes]


@dataclass(frozen=True)
class _BodySteps:
    decoder: Decoder
    array_fields: frozenset[str]
    run: Compute
    codec: Codec
    media_type: str
    render: Render | None

    def decode(self, body: bytes, limits: Limits, stats: RequestStats) -> DecodedBody:
        try:
            decoded = self.decoder.decode(body, self.array_fields)
        except RecursionError as exc:  # msgpack, or JSON past the decoder's recursion limit
            raise NestingTooDeep("the body is nested too deeply to decode") from exc
        _check_decoded(decoded, limits)
        shapes = {name: field.array.shape for name, field in decoded.arrays.items()}
        count_samples(stats, shapes, decoded.options.get("axis", -1))
        return decoded

    def compute(self, decoded: DecodedBody, limits: Limits) -> Mapping[str, Any]:
        return self.run(decoded, limits.compute_threads)

    def encode(self, result: Mapping[str, Any]) -> Answer:
        if self.render is not None:
            return Answer([self.render(result)], self.media_type)
        return Answer(encode_parts(self.codec, result), self.media_type)


async def serve_body(
    scope: Scope,
    receive: Receive,
    array_fields: frozenset[str],
    compute: Compute,
    render: tuple[Render, str] | None = None,
) -> Answer:
    """The pipeline for a JSON or msgpack body, answered in the negotiated codec.

    ``compute(decoded, threads)`` gives the response tree. A route that answers in its
    own format (the report) passes ``render``, a function and its media type; its
    errors still answer in the request's codec.
    """
    head = read_head(scope)
    state: dict[str, Any] = scope.setdefault("state", {})
    request_codec = codec_for_content_type(head.content_type)
    state[ERROR_CODEC] = request_codec
    if render is None:
        codec = codec_for_accept(head.accept, request_codec)
        state[ERROR_CODEC] = codec
        media_type = codec.media_type
    else:
        codec, media_type = request_codec, render[1]
    reader = None
    if head.content_length is not None and is_identity(head.content_encoding):
        # A large JSON body is parsed a block of rows at a time while it arrives.
        reader = reader_for(request_codec, array_fields, head.content_length)
    steps = _BodySteps(
        reader or request_codec,
        array_fields,
        compute,
        codec,
        media_type,
        None if render is None else render[0],
    )
    return await handle(scope, receive, head, steps, None if reader is None else reader.feed)


# Limits on decoded content: the element count is 413 (too big to score here), rank
# and nesting 422 (the content has the wrong shape).


def check_shape(name: str, shape: Sequence[int], limits: Limits) -> None:
    """Refuse an array of ``shape`` past ``max_rank`` or ``max_elements``."""
    if len(shape) > limits.max_rank:
        message = f"{name}: {len(shape)} dimensions; at most {limits.max_rank} are allowed"
        raise RankTooHigh(message, (name,))
    size = math.prod(shape)  # exact: a declared dimension may be any JSON integer
    if size > limits.max_elements:
        # A 4300-digit count is more than str() will write: give its power of two.
        count = str(size) if size < 10**18 else f"over 2**{size.bit_length() - 1}"
        message = f"{name}: {count} elements; at most {limits.max_elements} are allowed"
        raise TooManyElements(message, (name,))


def _nesting(value: Any, limit: int) -> int:
    """Depth of lists and dicts in ``value``, counting no further than ``limit + 1``."""
    if limit < 0 or not isinstance(value, list | dict):
        return 0
    items = value.values() if isinstance(value, dict) else value
    return 1 + max((_nesting(item, limit - 1) for item in items), default=0)


def _check_decoded(decoded: DecodedBody, limits: Limits) -> None:
    # Arrays are bounded by their rank; only option values can nest freely, and they are
    # small, so walking them costs far less than scanning the whole body's brackets.
    depth = limits.max_json_depth
    for name, value in decoded.options.items():
        if _nesting(value, depth) >= depth:
            raise NestingTooDeep(f"{name}: nested deeper than {depth} levels", (name,))
    for name, field in decoded.arrays.items():
        if field.array.ndim >= depth:
            raise NestingTooDeep(f"{name}: nested deeper than {depth} levels", (name,))
    # Nesting first for every field, then sizes: a body that is both too deep and too
    # large is refused for its depth, whichever field comes first.
    for name, field in decoded.arrays.items():
        check_shape(name, field.array.shape, limits)


def count_samples(
    stats: RequestStats, shapes: Mapping[str, tuple[int, ...]], axis: Any = -1
) -> None:
    """Record samples and classes of the predictions, for the request's metrics and log."""
    for name in PREDICTION_FIELDS:
        if name in shapes:
            shape = shapes[name]
            if len(shape) >= 2 and isinstance(axis, int) and -len(shape) <= axis < len(shape):
                stats.classes = shape[axis]
                stats.samples = math.prod(shape) // max(shape[axis], 1)
            else:
                stats.classes, stats.samples = 1, math.prod(shape)
            return


# Reading the body: straight from the ASGI ``receive`` channel, under the limits.


async def _read(
    scope: Scope,
    receive: Receive,
    head: Head,
    limits: Limits,
    capacity: Capacity,
    on_data: OnData | None,
) -> bytes:
    """The body, its bytes held against the budget while it comes (no work slot)."""
    size = head.content_length
    connection = connection_of(scope)
    reservation = None
    if size is None or SMALL < size <= limits.max_body_bytes:  # larger: 413 unread
        reservation = Reservation(capacity, connection)
        # Refused before a byte is read when it cannot fit; the buffer takes this much.
        reservation.grow(size or 0)
    if connection is not None or size is None:
        inner, received = receive, 0

        async def held_receive() -> Message:
            nonlocal received
            message = await inner()
            if connection is not None and connection.body_timed_out:
                raise BodyTimeout(limits.body_timeout, limits.min_body_rate)
            if size is None and reservation is not None:
                received += len(message.get("body", b""))
                reservation.grow(received)
            return message

        receive = held_receive
    try:
        return await read_body(receive, size, limits.max_body_bytes, on_data)
    finally:
        if reservation is not None:
            reservation.release()


async def read_body(
    receive: Receive, declared: int | None, limit: int, on_data: OnData | None = None
) -> bytes:
    """Return the body; refuse from Content-Length first, then stop reading past the limit.

    ``declared`` is the Content-Length (None for a chunked body). ``on_data`` sees a
    body of declared length that comes in several chunks as it fills.
    """
    if declared is not None:
        if declared > limit:
            raise BodyTooLarge(limit, declared)
        first = await _message(receive)
        chunk: bytes = first.get("body", b"")
        if not first.get("more_body", False):
            # All of it in one message, as every small body comes: no buffer, no copy.
            if len(chunk) > declared:
                raise BodyTooLarge(declared, len(chunk))
            return chunk
        return await _read_into(receive, declared, chunk, on_data)
    chunks: list[bytes] = []
    size = 0
    async for chunk in _chunks(receive):
        size += len(chunk)
        if size > limit:
            # A chunked body announces no length: stop at the first byte past the limit.
            raise BodyTooLarge(limit, None)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _message(receive: Receive) -> Message:
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnect
    return message


async def _chunks(receive: Receive, first: bytes = b"") -> AsyncIterator[bytes]:
    # Starlette's Request.stream() without the Request: the scoring routes are plain ASGI.
    if first:
        yield first
    while True:
        message = await _message(receive)
        chunk: bytes = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _read_into(receive: Receive, size: int, first: bytes, on_data: OnData | None) -> bytes:
    # The length is known: fill one buffer in place. Joining chunks would hold the body
    # twice at the end, which made reading the peak of a large request's memory.
    buffer = bytearray(size)
    at = 0
    with memoryview(buffer) as view:
        async for chunk in _chunks(receive, first):
            end = at + len(chunk)
            if end > size:  # the HTTP parser frames by Content-Length; never trust it blindly
                raise BodyTooLarge(size, end)
            view[at:end] = chunk
            at = end
            if on_data is not None:
                on_data(buffer, at)
    if at < size:
        del buffer[at:]
    # Typed as bytes: every consumer (msgspec, zlib, NumPy, slicing) reads any buffer, and
    # bytes(buffer) would be the very copy this avoids. Tensors over it are writable.
    return cast(bytes, buffer)
