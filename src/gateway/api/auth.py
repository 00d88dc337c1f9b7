"""Token authentication with roles: viewer < auditor < operator < admin.

A token is sent as ``Authorization: Bearer TOKEN``. Only the live stream (``GET /api/v1/live``,
server-sent events, which a browser's EventSource cannot give headers) also takes it as
``?access_token=TOKEN``; anywhere else a token in the query is refused unread, so tokens do not
end up in proxy logs and browser histories. Tokens come from the environment or a file, or are
configured as their argon2id hash only. Reads may be opened to anonymous users
(``api.anonymous_read``); writes never are.

A wrong token is logged (the client address and path, never the token) and counted
(``api_auth_failures``); past ``api.auth_failures.max_failures`` within ``window_s`` from one
address, requests from that address that carry a token get 429 with ``Retry-After`` without being
checked (``api_auth_throttled``), until the oldest failure leaves the window. A success does not
clear the count: a holder of one valid token cannot use it to keep guessing another.

argon2 costs tens of milliseconds by design: a hashed token is verified once, in a worker thread,
one verification at a time; then it is remembered under a keyed digest (HMAC-SHA256 with a key
drawn at start), so later requests cost a dictionary lookup.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import os
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status

from core.logs import log_event
from gateway.api.context import ApiContext
from gateway.config import ApiConfig, AuthFailuresConfig
from gateway.metrics import GatewayMetrics

log = logging.getLogger("etalon.api")

LIVE_PATH = "/api/v1/live"
MAX_TOKEN_CHARS = 512
"""Longer is not a token of ours: refused before any hashing."""
MAX_TRACKED_CLIENTS = 10_000
"""Client addresses whose failures are remembered; the least recent are forgotten first."""


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


def token_hasher() -> Any:
    """argon2id with OWASP's minimum parameters (19 MiB, 2 passes, 1 lane): tokens are long
    random strings, so the hash only has to make a leaked config useless, not slow a dictionary
    attack on a human password."""
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    return PasswordHash((Argon2Hasher(time_cost=2, memory_cost=19_456, parallelism=1),))


class TokenBook:
    """The configured tokens, resolved once at start."""

    def __init__(self, config: ApiConfig) -> None:
        self.anonymous_read = config.anonymous_read
        self._plain: list[tuple[bytes, Principal]] = []
        self._hashed: list[tuple[str, Principal]] = []
        for entry in config.tokens:
            principal = Principal(entry.name, Role[entry.role.upper()])
            if entry.token is not None:
                self._plain.append((entry.token.resolve().encode(), principal))
            elif entry.token_hash is not None:
                self._hashed.append((entry.token_hash, principal))
        self._hasher: Any = token_hasher() if self._hashed else None
        self._key = os.urandom(32)
        self._verified: dict[bytes, Principal] = {}
        self._argon_slot = asyncio.Lock()

    async def lookup(self, token: str) -> Principal | None:
        """The principal of a token: plain secrets compared in constant time, hashed ones
        verified once with argon2 and then remembered under a keyed digest."""
        candidate = token.encode()
        if len(candidate) > MAX_TOKEN_CHARS:
            return None
        digest = hmac.new(self._key, candidate, hashlib.sha256).digest()
        known = self._verified.get(digest)
        if known is not None:
            return known
        for secret, principal in self._plain:
            if hmac.compare_digest(secret, candidate):
                return principal
        if not self._hashed:
            return None
        async with self._argon_slot:  # one argon2 at a time: a flood cannot take every core
            found = await asyncio.to_thread(self._verify_hashed, token)
        if found is not None:
            self._verified[digest] = found
        return found

    def _verify_hashed(self, token: str) -> Principal | None:
        for token_hash, principal in self._hashed:
            if self._hasher.verify(token, token_hash):
                return principal
        return None


class FailedLogins:
    """Failed authentications per client address in a sliding window (see the module doc)."""

    def __init__(self, config: AuthFailuresConfig, clock: Callable[[], float] = time.monotonic):
        self.max_failures = config.max_failures
        self.window_s = config.window_s
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str) -> deque[float] | None:
        failures = self._failures.get(client)
        if failures is None:
            return None
        horizon = self._clock() - self.window_s
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        return failures

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None if it may now."""
        failures = self._recent(client)
        if failures is None or len(failures) < self.max_failures:
            return None
        return max(1, math.ceil(failures[0] + self.window_s - self._clock()))

    def failed(self, client: str) -> bool:
        """Count a failure; True if it was the one that reached the limit."""
        failures = self._recent(client)
        if failures is None:
            failures = self._failures[client] = deque()
        self._failures.move_to_end(client)
        failures.append(self._clock())
        while len(self._failures) > MAX_TRACKED_CLIENTS:
            self._failures.popitem(last=False)
        return len(failures) == self.max_failures


def _client_of(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _token_of(request: Request, query_token: bool) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    if "access_token" in request.query_params:
        if not query_token:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                f"access_token in the query is accepted only on {LIVE_PATH}: send "
                "Authorization: Bearer TOKEN",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return request.query_params["access_token"]
    return None


def _metrics(request: Request) -> GatewayMetrics:
    ctx: ApiContext = request.app.state.context
    return ctx.metrics


def require(
    role: Role, *, query_token: bool = False
) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A dependency that lets the request through only with at least ``role``;
    ``query_token`` also takes the token from ``?access_token=`` (the live stream only)."""

    async def check(request: Request) -> Principal:
        book: TokenBook = request.app.state.tokens
        token = _token_of(request, query_token)
        if token is None:
            if role is Role.VIEWER and book.anonymous_read:
                return ANONYMOUS
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "a token is required (Authorization: Bearer TOKEN)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        failures: FailedLogins = request.app.state.failed_logins
        client = _client_of(request)
        wait_s = failures.retry_after(client)
        if wait_s is not None:
            _metrics(request).api_auth_throttled += 1
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"too many failed authentications from {client}: try again in {wait_s} s",
                headers={"Retry-After": str(wait_s)},
            )
        principal = await book.lookup(token)
        if principal is None:
            _metrics(request).api_auth_failures += 1
            limit_reached = failures.failed(client)
            log_event(
                log,
                logging.WARNING,
                "api authentication failed",
                client=client,
                method=request.method,
                path=request.url.path,
                reason="unknown token",
            )
            if limit_reached:
                log_event(
                    log,
                    logging.WARNING,
                    "api client throttled",
                    client=client,
                    failures=failures.max_failures,
                    window_s=failures.window_s,
                )
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
LiveViewer = Annotated[Principal, Depends(require(Role.VIEWER, query_token=True))]
"""A viewer of the live stream, whose token may come in ``?access_token=``."""
Auditor = Annotated[Principal, Depends(require(Role.AUDITOR))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
