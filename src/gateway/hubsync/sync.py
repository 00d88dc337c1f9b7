"""The gateway's side of the hub protocol: read the record store's ledger and its signed
checkpoints, ask the hub where the lab's chain stands (its cursor), and push segments from there,
in order, each ending on a checkpoint.

Resumable and idempotent by construction: the cursor comes from the hub, so a gateway that was
offline for days, or whose answer was lost when the hub died mid-push, starts from what the hub
holds; a segment the hub partly holds already adds only what is new (the hub recognises entries
by hash). A refused segment is kept in the sync state with the hub's reason (en/vi) and is not
pushed again until the ledger moved on or ``backoff.max_s`` passed: the hub records every
refusal, and a gateway must not fill its operators' list with one problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import sqlite3
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from core.backoff import BackoffTimer
from core.errors import ConfigError, StoreError
from core.logs import log_event
from gateway.hubsync.config import HubSyncConfig
from ledger import Checkpoint, CheckpointFile, Entry, LedgerError, Segment, export_segment
from ledger.segment import MAX_SEGMENT_ENTRIES

log = logging.getLogger("etalon.gateway.hubsync")

ENTRY_COLUMNS = "seq, ts_ns, kind, subject, actor, body_json, prev, hash"


class HubUnreachable(Exception):
    """The hub did not answer (network, TLS, timeout, 5xx): try again later."""


class LedgerSource:
    """The gateway's ledger as its record store keeps it: the ``ledger`` table of the SQLite
    file (read-only here) and the signed checkpoints file beside it."""

    def __init__(self, database: Path, checkpoints: Path, ledger: str | None = None) -> None:
        self.database = database
        self.checkpoints = checkpoints
        self.ledger = ledger

    def _connect(self) -> sqlite3.Connection:
        uri = f"file:{self.database}?mode=ro"
        return sqlite3.connect(uri, uri=True, timeout=10)

    def _has_ledger(self, db: sqlite3.Connection) -> bool:
        row = db.execute(
            "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='ledger'"
        ).fetchone()
        return bool(row and row[0])

    def ledger_id(self) -> str | None:
        """The ledger's id: configured, else the one the record store started with."""
        if self.ledger is not None:
            return self.ledger
        if not self.database.exists():
            return None
        try:
            with contextlib.closing(self._connect()) as db:
                row = db.execute("SELECT value FROM ledger_meta WHERE key='ledger'").fetchone()
        except sqlite3.Error:
            return None
        return None if row is None else str(row[0])

    def count(self) -> int:
        """How many entries the ledger holds (0 before it starts)."""
        if not self.database.exists():
            return 0
        try:
            with contextlib.closing(self._connect()) as db:
                if not self._has_ledger(db):
                    return 0
                row = db.execute("SELECT max(seq) FROM ledger").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"record store {self.database}: {exc}") from None
        return int(row[0]) if row and row[0] is not None else 0

    def signed(self, ledger: str) -> list[Checkpoint]:
        """The ledger's signed checkpoints."""
        if not self.checkpoints.exists():
            return []
        try:
            return [cp for cp in CheckpointFile(self.checkpoints).read() if cp.ledger == ledger]
        except (OSError, LedgerError) as exc:
            raise StoreError(f"checkpoints {self.checkpoints}: {exc}") from None

    def segment(self, ledger: str, from_seq: int, max_entries: int) -> Segment | None:
        """The segment from ``from_seq`` to the last checkpoint within ``max_entries`` (None when
        no checkpoint signs an entry from there yet)."""
        checkpoints = self.signed(ledger)
        last = from_seq + max_entries - 1
        ends = [cp.count for cp in checkpoints if from_seq <= cp.count <= last]
        if ends:
            to_seq = max(ends)
        else:
            # Checkpoints further apart than max_entries: the first one beyond, as long as a
            # segment may hold that many (else the push would wait for ever).
            beyond = [cp.count for cp in checkpoints if cp.count > last]
            if not beyond:
                return None
            to_seq = min(beyond)
            if to_seq - from_seq + 1 > MAX_SEGMENT_ENTRIES:
                end = from_seq + MAX_SEGMENT_ENTRIES - 1
                raise StoreError(
                    f"no checkpoint signs entries {from_seq} to {end}: a segment holds at "
                    f"most {MAX_SEGMENT_ENTRIES} entries (sign checkpoints more often: "
                    "records.ledger.checkpoint_every_entries)"
                )
            max_entries = to_seq - from_seq + 1
        try:
            with contextlib.closing(self._connect()) as db:
                rows = db.execute(
                    f"SELECT {ENTRY_COLUMNS} FROM ledger WHERE seq BETWEEN ? AND ? ORDER BY seq",
                    (from_seq, to_seq),
                ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"record store {self.database}: {exc}") from None
        try:
            return export_segment(
                [Entry(*row) for row in rows],
                checkpoints,
                ledger=ledger,
                from_seq=from_seq,
                to_seq=to_seq,
                max_entries=max_entries,
            )
        except LedgerError as exc:
            raise StoreError(f"record store {self.database}: {exc}") from None


@dataclass
class Refusal:
    """The hub's last refusal, as it gave it."""

    at_ns: int
    status: int
    reason: str
    code: str
    messages: dict[str, str]
    from_seq: int | None
    to_seq: int | None
    refusal: int | None


@dataclass
class SyncState:
    """Where the push stands (the dashboard and ``GET /api/v1/hub/sync`` show it)."""

    lab: str | None = None
    hub_url: str = ""
    local_count: int = 0
    hub_count: int | None = None
    last_pushed_seq: int | None = None
    last_push_ns: int | None = None
    last_contact_ns: int | None = None
    pushes: int = 0
    entries_pushed: int = 0
    refusals: int = 0
    last_refusal: Refusal | None = None
    error: str | None = None
    waiting_for_checkpoint: bool = False

    @property
    def lag(self) -> int | None:
        """Entries the hub does not hold yet."""
        if self.hub_count is None:
            return None
        return max(0, self.local_count - self.hub_count)

    def as_json(self) -> dict[str, Any]:
        """The state as the API serves it."""
        refusal = self.last_refusal
        return {
            "lab": self.lab,
            "hub": self.hub_url,
            "local_count": self.local_count,
            "hub_count": self.hub_count,
            "lag": self.lag,
            "last_pushed_seq": self.last_pushed_seq,
            "last_push_ns": None if self.last_push_ns is None else str(self.last_push_ns),
            "last_contact_ns": None if self.last_contact_ns is None else str(self.last_contact_ns),
            "pushes": self.pushes,
            "entries_pushed": self.entries_pushed,
            "refusals": self.refusals,
            "waiting_for_checkpoint": self.waiting_for_checkpoint,
            "error": self.error,
            "last_refusal": None
            if refusal is None
            else {
                "at_ns": str(refusal.at_ns),
                "status": refusal.status,
                "reason": refusal.reason,
                "code": refusal.code,
                "messages": refusal.messages,
                "from_seq": refusal.from_seq,
                "to_seq": refusal.to_seq,
                "refusal": refusal.refusal,
            },
        }


def _tls(config: HubSyncConfig) -> ssl.SSLContext | bool:
    if config.ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(config.ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise StoreError(f"hub.ca_file {config.ca_file}: {exc}") from None


def _head_count(answer: Any) -> int:
    """The ``count`` of a head the hub sent (ValueError if it is not one)."""
    if not isinstance(answer, dict):
        raise ValueError("not a JSON object")
    head = answer.get("head", answer)
    count = head.get("count") if isinstance(head, dict) else None
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError("no head count in the hub's answer")
    return count


def source_of(records_path: Path, checkpoints_file: Path | None = None) -> LedgerSource:
    """The ledger of a gateway's record store: its SQLite file and the checkpoints file beside
    it (``<records file stem>.checkpoints``, as the record store writes it)."""
    checkpoints = checkpoints_file or records_path.with_name(records_path.stem + ".checkpoints")
    return LedgerSource(records_path, checkpoints)


class HubSync:
    """Pushes one gateway's ledger to the hub (see the module doc)."""

    def __init__(
        self,
        config: HubSyncConfig,
        source: LedgerSource,
        *,
        clock: Any = time.time_ns,
    ) -> None:
        self.config = config
        self.source = source
        self.clock = clock
        self.state = SyncState(lab=config.lab, hub_url=config.url)
        self._refused_digest: str | None = None
        self._refused_at = 0.0
        self._client: httpx.AsyncClient | None = None

    def check(self) -> None:
        """Refuse at start what cannot work: a token that does not resolve, an unreadable CA
        file (ConfigError names the field)."""
        problems = []
        try:
            self.config.token.resolve()
        except ValueError as exc:
            problems.append(f"hub.token: {exc}")
        try:
            _tls(self.config)
        except StoreError as exc:
            problems.append(str(exc))
        if problems:
            raise ConfigError(problems)

    async def __aenter__(self) -> HubSync:
        self._client = httpx.AsyncClient(
            base_url=self.config.url,
            verify=_tls(self.config),
            timeout=self.config.timeout_s,
            headers={"Authorization": f"Bearer {self.config.token.resolve()}"},
            follow_redirects=False,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _lab(self) -> str | None:
        lab = self.config.lab or self.source.ledger_id()
        self.state.lab = lab
        return lab

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        assert self._client is not None, "use HubSync in 'async with'"
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise HubUnreachable(f"{type(exc).__name__}: {exc}"[:300]) from None
        if response.status_code >= 500 or response.status_code in (401, 404, 429):
            detail = response.text[:200].replace("\n", " ")
            raise HubUnreachable(f"HTTP {response.status_code}: {detail}")
        self.state.last_contact_ns = self.clock()
        return response

    async def cursor(self, lab: str) -> int:
        """The hub's count for the lab (the next push starts after it)."""
        response = await self._request("GET", f"/api/v1/labs/{lab}/cursor")
        try:
            return _head_count(response.json())
        except ValueError as exc:
            raise HubUnreachable(f"the hub's cursor is not a head: {exc}") from None

    async def sync_once(self) -> int:
        """Push everything signed that the hub does not hold; returns the entries it took.
        Raises HubUnreachable when the hub cannot be reached (the caller backs off)."""
        lab = self._lab()
        if lab is None:
            return 0  # the ledger has not started yet
        self.state.local_count = await asyncio.to_thread(self.source.count)
        count = await self.cursor(lab)
        self.state.hub_count = count
        self.state.error = None
        taken = 0
        while True:
            segment = await asyncio.to_thread(
                self.source.segment, lab, count + 1, self.config.max_entries
            )
            self.state.waiting_for_checkpoint = segment is None and self.state.local_count > count
            if segment is None:
                return taken
            body = segment.to_json()
            digest = hashlib.sha256(body).hexdigest()
            if digest == self._refused_digest and (
                time.monotonic() - self._refused_at < self.config.backoff.max_s
            ):
                return taken
            response = await self._request(
                "POST",
                f"/api/v1/labs/{lab}/segments",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            answer = self._json(response)
            if response.status_code == 200 and answer.get("accepted") is True:
                count = _head_count(answer)
                new = answer.get("new", 0)
                taken += new if isinstance(new, int) else 0
                self.state.hub_count = count
                self.state.last_pushed_seq = segment.to_seq
                self.state.last_push_ns = self.clock()
                self.state.pushes += 1
                self.state.entries_pushed += new if isinstance(new, int) else 0
                self._refused_digest = None
                continue
            self._refused(response.status_code, answer, segment, digest)
            return taken

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return {}
        return answer if isinstance(answer, dict) else {}

    def _refused(self, status: int, answer: dict[str, Any], segment: Segment, digest: str) -> None:
        messages = answer.get("messages")
        plain = {
            str(k): str(v)[:500]
            for k, v in (messages.items() if isinstance(messages, dict) else [])
        }
        if not plain:
            text = str(answer.get("detail") or answer.get("message") or f"HTTP {status}")[:500]
            plain = {"en": text, "vi": text}
        refusal = answer.get("refusal")
        self.state.refusals += 1
        self.state.last_refusal = Refusal(
            at_ns=self.clock(),
            status=status,
            reason=str(answer.get("reason") or status)[:64],
            code=str(answer.get("code") or "")[:128],
            messages=plain,
            from_seq=segment.from_seq,
            to_seq=segment.to_seq,
            refusal=refusal if isinstance(refusal, int) else None,
        )
        self._refused_digest = digest
        self._refused_at = time.monotonic()
        log_event(
            log,
            logging.WARNING,
            "hub refused a segment",
            lab=self.state.lab,
            status=status,
            reason=self.state.last_refusal.reason,
            from_seq=segment.from_seq,
            to_seq=segment.to_seq,
        )

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Push every ``interval_s`` (backing off while the hub is unreachable) until ``stop``."""
        async with contextlib.AsyncExitStack() as stack:
            if self._client is None:
                await stack.enter_async_context(self)
            await self._loop(stop or asyncio.Event())

    async def _loop(self, stop: asyncio.Event) -> None:
        backoff = BackoffTimer(self.config.backoff)
        reported = False
        while not stop.is_set():
            delay = self.config.interval_s
            try:
                await self.sync_once()
                backoff.reset()
                if reported:
                    log_event(log, logging.INFO, "hub reachable again", hub=self.config.url)
                    reported = False
            except HubUnreachable as exc:
                self.state.error = str(exc)
                delay = backoff.next_delay()
                if not reported:
                    log_event(
                        log,
                        logging.WARNING,
                        "hub unreachable",
                        hub=self.config.url,
                        reason=str(exc),
                    )
                    reported = True
            except StoreError as exc:
                self.state.error = str(exc)
                log_event(log, logging.ERROR, "hub sync cannot read the ledger", reason=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
