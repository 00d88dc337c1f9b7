"""Who is calling the hub: the public, a lab, or the hub's staff (viewer < operator < admin).

- **Labs** push with the token the hub issued at enrolment (``Authorization: Bearer
  etalon-lab-…``); the hub keeps only its SHA-256. The token says which lab is calling; what the
  lab pushes is then proven by its ledger signatures against the enrolled key — a stolen token
  alone cannot put a single entry into the hub, it can only push what the lab signed.
- **Staff** tokens are configured (``api.tokens``, from the environment or a file).
- **The public** reads the registry without a token when ``api.public_read`` is on.

Pages (GET) also take the token from a cookie set by the sign-in form; writes never do, so a
page elsewhere cannot make a signed-in browser change anything (no CSRF).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status

from hub.config import HubApiConfig
from hub.labs import lab_of_token

TOKEN_COOKIE = "etalon_hub_token"


class Role(IntEnum):
    """What a caller may do; each role may do what the ones below it may."""

    PUBLIC = 0
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3


@dataclass(frozen=True)
class Principal:
    """The caller: a name (recorded in the audit chain), a role, and the lab for a lab token."""

    name: str
    role: Role
    lab: str | None = None


PUBLIC = Principal("public", Role.PUBLIC)


class StaffTokens:
    """The configured staff tokens, resolved once at start."""

    def __init__(self, config: HubApiConfig) -> None:
        self.public_read = config.public_read
        self._tokens = [
            (t.token.resolve().encode(), Principal(t.name, Role[t.role.upper()]))
            for t in config.tokens
        ]

    def lookup(self, token: str) -> Principal | None:
        """The principal of a staff token, compared in constant time."""
        candidate = token.encode()
        found = None
        for secret, principal in self._tokens:
            if hmac.compare_digest(secret, candidate):
                found = principal
        return found


def token_of(request: Request) -> str | None:
    """The bearer token of a request (or, for a GET, the sign-in cookie)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    if request.method in ("GET", "HEAD"):
        return request.cookies.get(TOKEN_COOKIE)
    return None


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"}
    )


async def principal_of(request: Request) -> Principal:
    """Who is calling (PUBLIC without a token); 401 for a token the hub does not know."""
    token = token_of(request)
    if token is None:
        return PUBLIC
    staff: StaffTokens = request.app.state.staff
    found = staff.lookup(token)
    if found is not None:
        return found
    context = request.app.state.context
    async with context.db.write() as conn:
        lab = await lab_of_token(conn, token)
    if lab is None:
        raise _unauthorized("unknown token")
    if lab["revoked_ns"] is not None:
        return Principal(f"lab:{lab['id']}", Role.PUBLIC, lab=lab["id"])
    return Principal(f"lab:{lab['id']}", Role.VIEWER, lab=lab["id"])


def require(role: Role) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A dependency letting a request through only with at least ``role``."""

    async def check(request: Request) -> Principal:
        principal = await principal_of(request)
        staff: StaffTokens = request.app.state.staff
        if role is Role.PUBLIC or (role is Role.VIEWER and staff.public_read):
            return principal
        if principal is PUBLIC:
            raise _unauthorized("a token is required (Authorization: Bearer TOKEN)")
        if principal.role < role or (principal.lab is not None and role > Role.VIEWER):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"{principal.name} may not do this (needs {role.name.lower()})",
            )
        return principal

    return check


async def require_lab(request: Request) -> Principal:
    """A lab's own routes: the caller's token must be the lab's (revoked labs included, so that
    their pushes are refused and recorded rather than anonymous)."""
    principal = await principal_of(request)
    lab = request.path_params.get("lab")
    if principal.lab is None:
        if principal is PUBLIC:
            raise _unauthorized("a lab's push token is required")
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only a lab pushes its ledger")
    if principal.lab != lab:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"this token is lab {principal.lab}'s, not {lab}'s"
        )
    return principal


async def require_token(request: Request) -> Principal:
    """Any token the hub knows (staff of any role, or an enrolled lab's), never the public."""
    principal = await principal_of(request)
    if principal is PUBLIC:
        raise _unauthorized("a token is required (Authorization: Bearer TOKEN)")
    if principal.role < Role.VIEWER:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{principal.name} is revoked")
    return principal


Public = Annotated[Principal, Depends(require(Role.PUBLIC))]
Reader = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
LabCaller = Annotated[Principal, Depends(require_lab)]
TokenHolder = Annotated[Principal, Depends(require_token)]
