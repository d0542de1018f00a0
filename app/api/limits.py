"""Request limits applied around decoding, and the staged (timed) run of a scoring request.

Element count -> 413 (the request is too big to score here); rank and nesting depth -> 422
(the shape of the content is wrong); a passed deadline -> 504.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from app.api.inflate import inflate, is_identity
from app.codecs import (
    Buffer,
    Codec,
    CodecError,
    DecodedBody,
    Decoder,
    InvalidArray,
    encode_parts,
)
from app.observability.stats import RequestStats
from app.settings import Settings

if TYPE_CHECKING:  # endpoints imports the error table, which imports this module
    from app.api.endpoints import Endpoint

T = TypeVar("T")

__all__ = [
    "DeadlineExceeded",
    "Limits",
    "NestingTooDeep",
    "Overloaded",
    "RankTooHigh",
    "TooManyElements",
    "run_sized",
    "run_staged",
]


class TooManyElements(CodecError):
    """An array with more elements than ``max_elements``."""


class RankTooHigh(InvalidArray):
    """An array with more dimensions than ``max_rank``."""


class NestingTooDeep(InvalidArray):
    """A body nested deeper than ``max_json_depth`` (or than the decoder can follow)."""


class Overloaded(Exception):
    """No work slot is free, or the memory budget for waiting clients is spent (503)."""


class DeadlineExceeded(Exception):
    """The request took longer than ``request_timeout_seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the request did not complete within {seconds:g} s")


@dataclass(frozen=True)
class Limits:
    """The limits of one application, from its settings."""

    max_decompressed_bytes: int
    max_elements: int
    max_rank: int
    max_json_depth: int
    timeout: float
    inline_body_bytes: int
    compute_threads: int = 1

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            settings.max_decompressed_bytes,
            settings.max_elements,
            settings.max_rank,
            settings.max_json_depth,
            settings.request_timeout_seconds,
            settings.inline_body_bytes,
            settings.compute_threads,
        )


PREDICTION_FIELDS = ("logits", "log_probs", "probs")


def _nesting(value: Any, limit: int) -> int:
    """Depth of lists and dicts in ``value``, counting no further than ``limit + 1``."""
    if limit < 0 or not isinstance(value, list | dict):
        return 0
    items = value.values() if isinstance(value, dict) else value
    return 1 + max((_nesting(item, limit - 1) for item in items), default=0)


def _check_nesting(decoded: DecodedBody, limits: Limits) -> None:
    # Arrays are bounded by their rank; only option values can nest freely, and they are
    # small, so walking them costs far less than scanning the whole body's brackets.
    for name, value in decoded.options.items():
        if _nesting(value, limits.max_json_depth) >= limits.max_json_depth:
            message = f"{name}: nested deeper than {limits.max_json_depth} levels"
            raise NestingTooDeep(message, (name,))
    for name, field in decoded.arrays.items():
        if field.array.ndim >= limits.max_json_depth:
            message = f"{name}: nested deeper than {limits.max_json_depth} levels"
            raise NestingTooDeep(message, (name,))


def _check_arrays(decoded: DecodedBody, limits: Limits, stats: RequestStats) -> None:
    for name, field in decoded.arrays.items():
        array = field.array
        if array.ndim > limits.max_rank:
            raise RankTooHigh(
                f"{name}: {array.ndim} dimensions; at most {limits.max_rank} are allowed", (name,)
            )
        if array.size > limits.max_elements:
            raise TooManyElements(
                f"{name}: {array.size} elements; at most {limits.max_elements} are allowed",
                (name,),
            )
    for name in PREDICTION_FIELDS:
        if name in decoded.arrays:
            shape = decoded.arrays[name].array.shape
            axis = decoded.options.get("axis", -1)
            if len(shape) >= 2 and isinstance(axis, int) and -len(shape) <= axis < len(shape):
                stats.classes = shape[axis]
                stats.samples = math.prod(shape) // max(shape[axis], 1)
            else:
                stats.classes, stats.samples = 1, math.prod(shape)
            break


async def run_sized(
    work: Callable[[bytes], T], body: bytes, content_encoding: str | None, limits: Limits
) -> T:
    """Run ``work(body)`` on the event loop for a small plain body, else in a worker thread.

    With 16 requests in flight, threads queue on the GIL that every NumPy call drops
    and retakes: small requests served inline went from about 1400 to 600 us of CPU
    each (bench/README.md). A compressed body may inflate to anything: always a thread.
    """
    if len(body) <= limits.inline_body_bytes and is_identity(content_encoding):
        return work(body)
    # On timeout the thread is abandoned; run_staged stops at its next stage boundary.
    return await anyio.to_thread.run_sync(work, body, abandon_on_cancel=True)


def run_staged(
    endpoint: Endpoint,
    body: bytes,
    content_encoding: str | None,
    codecs: tuple[Decoder, Codec],
    limits: Limits,
    stats: RequestStats,
    deadline: float,
) -> list[Buffer]:
    """Inflate, check, decode, compute and encode one request, timing each stage.

    Runs in a worker thread. A thread cannot be cancelled, so it checks the deadline
    between stages and gives up early once its answer would be discarded anyway.
    """
    request_codec, response_codec = codecs
    start = perf_counter()
    if content_encoding is not None:
        body = inflate(body, content_encoding, limits.max_decompressed_bytes)
    try:
        decoded = request_codec.decode(body, endpoint.array_fields)
    except RecursionError as exc:  # msgpack, or JSON past the decoder's own recursion limit
        raise NestingTooDeep("the body is nested too deeply to decode") from exc
    _check_nesting(decoded, limits)
    _check_arrays(decoded, limits, stats)
    decoded_at = perf_counter()
    stats.decode = decoded_at - start
    _check_deadline(deadline, decoded_at, limits)
    tree: Any = endpoint.compute(decoded, limits.compute_threads)
    computed_at = perf_counter()
    stats.compute = computed_at - decoded_at
    _check_deadline(deadline, computed_at, limits)
    content = encode_parts(response_codec, tree)
    stats.encode = perf_counter() - computed_at
    return content


def _check_deadline(deadline: float, now: float, limits: Limits) -> None:
    if now > deadline:
        raise DeadlineExceeded(limits.timeout)
