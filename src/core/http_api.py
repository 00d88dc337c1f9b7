"""What every HTTP API (the gateway's and the hub's) shares, free of any web framework: the one
mapping of the error tree (:mod:`core.errors`) to status codes, and a request body read no
further than its limit."""

from __future__ import annotations

from collections.abc import AsyncIterable
from http import HTTPStatus

from core.errors import (
    ConflictError,
    EtalonError,
    InvalidInputError,
    NotFoundError,
    OperationError,
    StoreError,
)

STATUS_BY_KIND: tuple[tuple[type[EtalonError], int], ...] = (
    (NotFoundError, HTTPStatus.NOT_FOUND.value),
    (ConflictError, HTTPStatus.CONFLICT.value),
    (InvalidInputError, HTTPStatus.UNPROCESSABLE_ENTITY.value),
    (OperationError, HTTPStatus.BAD_REQUEST.value),
    (StoreError, HTTPStatus.SERVICE_UNAVAILABLE.value),
)
"""Most specific first: the first kind an error is an instance of gives its status."""


def status_for(error: EtalonError) -> int:
    """The HTTP status that answers ``error``; 500 for a kind an API does not expect."""
    for kind, code in STATUS_BY_KIND:
        if isinstance(error, kind):
            return code
    return HTTPStatus.INTERNAL_SERVER_ERROR.value


async def read_at_most(
    declared_length: str | None, chunks: AsyncIterable[bytes], limit: int
) -> bytes | None:
    """A request body of at most ``limit`` bytes, or None past it: refused at once when its
    declared ``Content-Length`` says so, and otherwise counted as it arrives (a chunked body,
    or one longer than declared), never read further than the limit."""
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit:
        return None
    received: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            return None
        received.append(chunk)
    return b"".join(received)
