"""Request limits applied around decoding, and the staged (timed) run of a scoring request.

Element count -> 413 (the request is too big to score here); rank and nesting depth -> 422
(the shape of the content is wrong); a passed deadline -> 504.
"""

from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from app.api.inflate import inflate
from app.codecs import JSON, Codec, CodecError, DecodedBody, InvalidArray
from app.observability.stats import RequestStats
from app.settings import Settings

if TYPE_CHECKING:  # endpoints imports the error table, which imports this module
    from app.api.endpoints import Endpoint

__all__ = [
    "DeadlineExceeded",
    "Limits",
    "NestingTooDeep",
    "RankTooHigh",
    "TooManyElements",
    "json_depth_error",
    "run_staged",
]


class TooManyElements(CodecError):
    """An array with more elements than ``max_elements``."""


class RankTooHigh(InvalidArray):
    """An array with more dimensions than ``max_rank``."""


class NestingTooDeep(InvalidArray):
    """A body nested deeper than ``max_json_depth`` (or than the decoder can follow)."""


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

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            settings.max_decompressed_bytes,
            settings.max_elements,
            settings.max_rank,
            settings.max_json_depth,
            settings.request_timeout_seconds,
        )


PREDICTION_FIELDS = ("logits", "log_probs", "probs")

# Only brackets matter for depth: bytes.translate drops every other byte at C speed (about
# 3 GB/s), and the running sum of +1 for [ { and -1 for ] } over what is left is the depth.
# Strings are not skipped; no valid request has brackets inside a string, so that only
# makes an invalid one fail sooner.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
_STEP = np.zeros(256, dtype=np.int8)
_STEP[ord("[")] = 1
_STEP[ord("]")] = -1
_CHUNK = 1 << 22
_FIELDS = msgspec.json.Decoder(dict[str, msgspec.Raw])


def json_depth_error(body: bytes, limit: int) -> NestingTooDeep | None:
    """The error for a JSON body nested deeper than ``limit``, naming its top-level key."""
    if not _too_deep(body, limit):
        return None
    loc: tuple[str | int, ...] = ()
    try:  # the error path only: find the field (a body nested past ~1000 has no fields)
        fields = _FIELDS.decode(body)
    except (msgspec.DecodeError, RecursionError):
        fields = {}
    for name, raw in fields.items():
        if _too_deep(bytes(raw), limit - 1):
            loc = (name,)
            break
    where = f"{loc[0]}: " if loc else ""
    return NestingTooDeep(f"{where}nested deeper than {limit} levels", loc)


def _too_deep(body: bytes, limit: int) -> bool:
    if len(body) <= limit:
        return False
    brackets = body.translate(_AS_SQUARE, _NOT_BRACKETS)
    # Fast path: each pass deletes the innermost pairs, one level, at C speed; a usual
    # body (rank 2 or 3) is gone in a few passes. Past the limit, or unbalanced: count.
    rest = brackets
    for _ in range(limit):
        if not rest:
            return False
        shorter = rest.replace(b"[]", b"")
        if len(shorter) == len(rest):
            break
        rest = shorter
    if not rest:
        return False
    depth = 0
    for start in range(0, len(brackets), _CHUNK):
        chunk = np.frombuffer(brackets, np.uint8, min(_CHUNK, len(brackets) - start), start)
        levels = np.cumsum(_STEP[chunk], dtype=np.int32)
        levels += depth
        if levels.max() > limit:
            return True
        depth = int(levels[-1])
    return False


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
                stats.samples = int(np.prod(shape)) // max(shape[axis], 1)
            else:
                stats.classes, stats.samples = 1, int(np.prod(shape))
            break


def run_staged(
    endpoint: Endpoint,
    body: bytes,
    content_encoding: str | None,
    codecs: tuple[Codec, Codec],
    limits: Limits,
    stats: RequestStats,
    deadline: float,
) -> bytes:
    """Inflate, check, decode, compute and encode one request, timing each stage.

    Runs in a worker thread. A thread cannot be cancelled, so it checks the deadline
    between stages and gives up early once its answer would be discarded anyway.
    """
    request_codec, response_codec = codecs
    start = perf_counter()
    if content_encoding is not None:
        body = inflate(body, content_encoding, limits.max_decompressed_bytes)
    if request_codec is JSON and (error := json_depth_error(body, limits.max_json_depth)):
        raise error
    try:
        decoded = request_codec.decode(body, endpoint.array_fields)
    except RecursionError as exc:  # msgpack, or JSON past the decoder's own recursion limit
        raise NestingTooDeep("the body is nested too deeply to decode") from exc
    _check_arrays(decoded, limits, stats)
    decoded_at = perf_counter()
    stats.decode = decoded_at - start
    _check_deadline(deadline, decoded_at, limits)
    tree: Any = endpoint.compute(decoded)
    computed_at = perf_counter()
    stats.compute = computed_at - decoded_at
    _check_deadline(deadline, computed_at, limits)
    content = response_codec.encode(tree)
    stats.encode = perf_counter() - computed_at
    return content


def _check_deadline(deadline: float, now: float, limits: Limits) -> None:
    if now > deadline:
        raise DeadlineExceeded(limits.timeout)
