"""In-process events of the gateway: what ingest saw, for alerts, analytics and live views.

Handlers run synchronously on the event loop's thread, in subscription order, right after the
event happened (readings: after they were spooled and acknowledged). They must be quick and never
block: one that has real work to do queues it for a task of its own. A handler that raises is
logged and counted, and the others still run: a broken listener never stalls ingest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from core.logs import log_event
from edge_agent.wire import WireReading

if TYPE_CHECKING:
    from edge_agent.wire_batches import ChannelOrder, WireRow

log = logging.getLogger("etalon.gateway")

E = TypeVar("E")


class ReadingsArrived:
    """Validated readings of one agent, as they were spooled (with their corrections).

    Ingest hands over what it decoded: the wire-format dicts (``readings``) are made when a
    listener first asks for them (``make``), and, for a batch it did not correct, its rows and
    their :class:`~edge_agent.wire_batches.ChannelOrder` (``rows``, ``order``; else None), from
    which a listener that needs a few readings makes those alone (the live values: each
    channel's newest, see :meth:`gateway.ingest.live.LiveValues.newest`)."""

    __slots__ = ("_make", "_readings", "agent", "order", "rows", "site")

    def __init__(
        self,
        site: str,
        agent: str,
        readings: list[WireReading] | None = None,
        *,
        rows: Sequence[WireRow] | None = None,
        order: ChannelOrder | None = None,
        make: Callable[[], list[WireReading]] | None = None,
    ) -> None:
        if (readings is None) == (make is None):
            raise ValueError("readings or make, one of them")
        self.site = site
        self.agent = agent
        self._readings = readings
        self._make = make
        self.rows = rows
        self.order = order

    @property
    def readings(self) -> list[WireReading]:
        """The readings as wire-format dicts (made once, on first use)."""
        if self._readings is None:
            assert self._make is not None
            self._readings, self._make = self._make(), None
        return self._readings

    def __repr__(self) -> str:
        return f"ReadingsArrived({self.site!r}, {self.agent!r}, {len(self.readings)} readings)"


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    """An agent went online or offline (its birth message, its will, or a clean stop)."""

    site: str
    agent: str
    state: str
    previous: str | None
    reason: str | None
    ts_ns: int


@dataclass(frozen=True, slots=True)
class InstrumentStateChanged:
    """An instrument of an agent became connected or unavailable."""

    site: str
    agent: str
    instrument: str
    state: str
    previous: str | None
    reason: str | None
    since_ns: int


@dataclass(frozen=True, slots=True)
class Heard:
    """The gateway's probe came back: every message the broker took before ``sent`` (the
    gateway's ``time.monotonic()`` when it published the probe) has been handed over before this
    event. Silence is judged up to there, never beyond: what the gateway has not read yet (its
    loop busy, the broker's backlog after a restart) is not the channels' silence."""

    sent: float


class EventHub:
    """Typed publish/subscribe; see the module doc."""

    def __init__(self) -> None:
        self._handlers: dict[type[Any], list[Callable[[Any], None]]] = {}
        self.handler_errors = 0

    def subscribe(self, kind: type[E], handler: Callable[[E], None]) -> None:
        """Call ``handler(event)`` for every event of ``kind``."""
        self._handlers.setdefault(kind, []).append(handler)

    def wants(self, kind: type[Any]) -> bool:
        """Whether anything listens to events of ``kind`` (so they are worth making)."""
        return bool(self._handlers.get(kind))

    def publish(self, event: object) -> None:
        """Deliver an event to its handlers."""
        for handler in self._handlers.get(type(event), ()):
            try:
                handler(event)
            except Exception as exc:  # noqa: BLE001 - a listener's bug must not stop ingest
                self.handler_errors += 1
                log_event(
                    log,
                    logging.ERROR,
                    "event handler failed",
                    kind=type(event).__name__,
                    handler=getattr(handler, "__qualname__", repr(handler)),
                    reason=f"{type(exc).__name__}: {exc}",
                )


@dataclass(frozen=True, slots=True)
class ControlViolation:
    """One control-chart signal: which rule (``nelson-1`` … ``nelson-8``, ``ewma``, ``cusum``)
    fired at which reading."""

    rule: str
    ts_ns: int


@dataclass(frozen=True, slots=True)
class StandardEvaluated:
    """The scheduled analytics of one reference standard, as the alert engine needs them.

    Values are in the standard's ``unit``. ``reference`` ± ``reference_expanded_u`` is what the
    measured value is checked against: the value from the certificate history at evaluation time
    (drift-corrected when a drift model is in use) with its expanded uncertainty (coverage factor
    ``k``). ``None`` means not known (no certificate, no monitored reading yet, no fit).
    """

    site: str
    standard_id: str
    ts_ns: int
    unit: str
    measured: float | None
    measured_u: float | None
    measured_ts_ns: int | None
    reference: float | None
    reference_expanded_u: float | None
    k: float | None
    tolerance_low: float | None
    tolerance_high: float | None
    predicted_out_of_tolerance_ns: int | None
    calibration_due_ns: int | None
    violations: tuple[ControlViolation, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordsVerified:
    """The record store was verified (at start, periodically, on request), or a writer found
    its ledger changed behind its back (``source: writer``): the records_integrity rules judge
    it. ``finding`` is the first finding (kind, code, params, seq, table, key) or None."""

    site: str
    ledger: str
    ok: bool
    checked_ns: int
    source: str
    finding: dict[str, Any] | None = None
