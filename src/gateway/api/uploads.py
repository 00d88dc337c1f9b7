"""Certificates sent as a request body (a standard's or an instrument's DCC): the media types a
DCC comes as, and a body refused with 413 past its limit."""

from __future__ import annotations

from fastapi import HTTPException, Request, status

from core.http_api import read_at_most

DCC_MEDIA_TYPES = ("application/xml", "text/xml", "application/vnd.ptb.dcc+xml")


async def read_capped(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 beyond ``limit`` bytes (whatever the client says
    its length is: a chunked body is counted as it arrives)."""
    data = await read_at_most(request.headers.get("content-length"), request.stream(), limit)
    if data is None:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"a certificate may have at most {limit // 2**20} MiB",
        )
    return data
