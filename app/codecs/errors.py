"""Every error a codec raises; the web layer's one table gives each its status.

:class:`CodecError` carries ``loc``, the path of the offending value, which the error
body names. Negotiation errors carry the value that matched no codec.
"""

from __future__ import annotations

__all__ = [
    "CodecError",
    "DecompressedTooLarge",
    "DuplicateKey",
    "InvalidArray",
    "MalformedBody",
    "NotAcceptable",
    "OptionOutOfRange",
    "UnsupportedEncoding",
    "UnsupportedMediaType",
]

Loc = tuple[str | int, ...]


class CodecError(ValueError):
    """Base of codec errors; ``loc`` is the path of the offending value."""

    # The ``type`` of the error item on the wire; None: the class name in snake case.
    problem_type: str | None = None

    def __init__(self, message: str, loc: Loc = ()) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc


class MalformedBody(CodecError):
    """The body is not valid JSON / msgpack, or not an object at the top level."""


class InvalidArray(CodecError):
    """A well-formed body whose array field is not a numeric array or a valid tensor."""


class DuplicateKey(InvalidArray):
    """A top-level key given twice."""


class OptionOutOfRange(InvalidArray):
    """An option whose value no decoder can hold (a number past float64, say).

    On the wire it is an ``invalid_option``, as the core's refusal of an option is:
    clients match one type for a bad option, whichever layer saw it.
    """

    problem_type = "invalid_option"


class DecompressedTooLarge(CodecError):
    """The body inflates past ``max_decompressed_bytes``."""


class UnsupportedEncoding(CodecError):
    """A ``Content-Encoding`` other than gzip, deflate or identity."""


class UnsupportedMediaType(Exception):
    """The request's Content-Type names no codec (the web layer answers 415)."""

    def __init__(self, value: str, supported: tuple[str, ...]) -> None:
        super().__init__(f"unsupported Content-Type {value!r}; supported: {', '.join(supported)}")
        self.value = value
        self.supported = supported


class NotAcceptable(Exception):
    """Accept rules out every codec (the web layer answers 406)."""

    def __init__(self, value: str, supported: tuple[str, ...]) -> None:
        super().__init__(
            f"no acceptable media type in {value!r}; supported: {', '.join(supported)}"
        )
        self.value = value
        self.supported = supported
