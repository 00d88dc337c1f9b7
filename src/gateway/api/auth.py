"""Token authentication with roles: viewer < auditor < operator < admin.

A token is sent as ``Authorization: Bearer TOKEN`` or, where a browser cannot set headers
(server-sent events), as ``?access_token=TOKEN``. Tokens come from the environment or a file,
never from the config file itself. Reads may be opened to anonymous users (``api.anonymous_read``);
writes never are.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status

from gateway.config import ApiConfig


class Role(IntEnum):
    """What a token may do; each role may do everything the ones below it may."""

    VIEWER = 1
    AUDITOR = 2
    """Reads like a viewer, and may run the records' verification (ISO/IEC 17025 assessors,
    quality managers)."""
    OPERATOR = 3
    ADMIN = 4


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name (recorded in the audit log) and role."""

    name: str
    role: Role


ANONYMOUS = Principal("anonymous", Role.VIEWER)


class TokenBook:
    """The configured tokens, resolved once at start."""

    def __init__(self, config: ApiConfig) -> None:
        self.anonymous_read = config.anonymous_read
        self._tokens = [
            (t.token.resolve().encode(), Principal(t.name, Role[t.role.upper()]))
            for t in config.tokens
        ]

    def lookup(self, token: str) -> Principal | None:
        """The principal of a token, compared in constant time."""
        candidate = token.encode()
        for secret, principal in self._tokens:
            if hmac.compare_digest(secret, candidate):
                return principal
        return None


def _token_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query_params.get("access_token")


def require(role: Role) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A dependency that lets the request through only with at least ``role``."""

    async def check(request: Request) -> Principal:
        book: TokenBook = request.app.state.tokens
        token = _token_of(request)
        if token is None:
            if role is Role.VIEWER and book.anonymous_read:
                return ANONYMOUS
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "a token is required (Authorization: Bearer TOKEN)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        principal = book.lookup(token)
        if principal is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "unknown token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if principal.role < role:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {principal.role.name.lower()} may not do this (needs {role.name.lower()})",
            )
        return principal

    return check


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Auditor = Annotated[Principal, Depends(require(Role.AUDITOR))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
