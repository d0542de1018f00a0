"""Option values that decode to nothing Python can hold are 422s naming the option."""

from __future__ import annotations

import pytest

from app.codecs import JSON, InvalidArray
from tests.codecs.conftest import ARRAY_FIELDS


@pytest.mark.parametrize(
    "number", [pytest.param(b"1e999", id="overflow"), pytest.param(b"-1e400", id="underflow")]
)
def test_option_number_out_of_range(number: bytes) -> None:
    with pytest.raises(InvalidArray, match="temperature: number out of range") as info:
        JSON.decode(b'{"temperature": ' + number + b"}", ARRAY_FIELDS)
    assert info.value.loc == ("temperature",)
