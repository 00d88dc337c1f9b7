"""Certificate files (DCC XML, PDF) as a lab's gateway received them, pushed with or after the
certificate entries that reference them by SHA-256, and served back byte for byte.

The hub keeps a file only if one of the pushing lab's certificate entries names its hash (so a
lab cannot use the hub as a file store), only if the bytes hash to that name, and — for XML — only
if it is a valid DCC 3.1.2 (the same check the gateway made when it took the file).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from typing import Any, Final

from core.errors import ConflictError, InvalidInputError
from hub.db import Database, fetch_all, fetch_found, fetch_one

SHA256: Final = re.compile(r"^[0-9a-f]{64}$")
MAX_LISTED: Final = 100


def check_sha256(text: str) -> str:
    """A file's name at the hub; InvalidInputError if it is not 64 lower-case hex digits."""
    if not SHA256.match(text):
        raise InvalidInputError("a file is named by its SHA-256: 64 lower-case hex digits")
    return text


def _check_dcc(data: bytes) -> None:
    from metrology import dcc

    try:
        dcc.validate(data)
    except dcc.DccError as exc:
        raise InvalidInputError(f"the file is not a valid DCC 3.1.2: {exc}") from None


def sniff(data: bytes) -> str:
    """``application/pdf`` or ``application/xml`` by content."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return "application/xml"
    raise InvalidInputError("a certificate file is a DCC (XML) or a PDF")


async def store(db: Database, lab: str, sha256: str, data: bytes) -> bool:
    """Keep a certificate file pushed by ``lab``; False if the hub had it already."""
    check_sha256(sha256)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise InvalidInputError("the file's SHA-256 is not the one it was pushed under")
    media_type = sniff(data)
    async with db.write() as conn:  # the primary: a replica may lag behind the last push
        referenced = await fetch_one(
            conn,
            "SELECT media_type FROM certificates WHERE lab = %s AND file_sha256 = %s LIMIT 1",
            (lab, sha256),
        )
        held = await fetch_one(
            conn, "SELECT 1 AS held FROM attachments WHERE sha256 = %s", (sha256,)
        )
    if referenced is None:
        raise ConflictError(
            f"no certificate entry of lab {lab} names file {sha256}: push the entries first"
        )
    if held is not None:
        return False
    if media_type == "application/xml":
        await asyncio.to_thread(_check_dcc, data)
    async with db.write() as conn:
        row = await fetch_one(
            conn,
            "INSERT INTO attachments (sha256, media_type, size, content, lab, received_ns) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING sha256",
            (sha256, media_type, len(data), data, lab, time.time_ns()),
        )
    return row is not None


async def missing(db: Database, lab: str) -> list[str]:
    """Files the lab's certificate entries name that the hub does not hold yet."""
    async with db.write() as conn:  # the primary: a replica may lag behind the last push
        rows = await fetch_all(
            conn,
            "SELECT DISTINCT c.file_sha256 FROM certificates c LEFT JOIN attachments a "
            "ON a.sha256 = c.file_sha256 WHERE c.lab = %s AND c.file_sha256 IS NOT NULL "
            "AND a.sha256 IS NULL ORDER BY c.file_sha256 LIMIT %s",
            (lab, MAX_LISTED),
        )
    return [row["file_sha256"] for row in rows]


async def fetch(db: Database, sha256: str) -> dict[str, Any]:
    """A held file: its bytes and media type; NotFoundError otherwise."""
    check_sha256(sha256)
    async with db.read() as conn:
        return await fetch_found(
            conn,
            "SELECT media_type, size, content, lab FROM attachments WHERE sha256 = %s",
            (sha256,),
            f"the hub holds no file {sha256}",
        )
