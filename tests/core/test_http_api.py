"""What the gateway's and the hub's APIs share: the error tree's HTTP statuses, the bounded body."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from core.errors import (
    ConflictError,
    EtalonError,
    InvalidInputError,
    NotFoundError,
    OperationError,
    PayloadError,
    StoreError,
    StoreRejected,
)
from core.http_api import read_at_most, status_for


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFoundError("x"), 404),
        (ConflictError("x"), 409),
        (InvalidInputError("x"), 422),
        (OperationError("x"), 400),
        (StoreError("x"), 503),
        (StoreRejected("x"), 503),
        (PayloadError("x"), 500),
        (EtalonError("x"), 500),
    ],
)
def test_each_kind_answers_its_status_most_specific_first(error: EtalonError, status: int) -> None:
    assert status_for(error) == status
    assert type(status_for(error)) is int


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_body_is_read_no_further_than_its_limit() -> None:
    assert await read_at_most(None, _chunks(b"ab", b"cd"), 4) == b"abcd"
    assert await read_at_most("4", _chunks(b"ab", b"cd"), 4) == b"abcd"
    assert await read_at_most(None, _chunks(), 4) == b""
    # declared too long: refused before a byte is read
    assert await read_at_most("5", _chunks(b"never"), 4) is None
    # chunked (no length) or longer than declared: refused at the chunk that passes the limit
    read: list[bytes] = []

    async def counted() -> AsyncIterator[bytes]:
        for part in (b"abc", b"de", b"f"):
            read.append(part)
            yield part

    assert await read_at_most(None, counted(), 4) is None
    assert read == [b"abc", b"de"]
    assert await read_at_most("2", _chunks(b"abc", b"de"), 4) is None
    # a length that is not a number is not believed, the bytes are counted
    assert await read_at_most("-1", _chunks(b"ab"), 4) == b"ab"
