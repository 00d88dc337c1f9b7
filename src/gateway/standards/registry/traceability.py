"""A standard's traceability chain: each certificate's stated chain, expanded through the
registered standards it names, with its open ends."""

from __future__ import annotations

import sqlite3

from gateway.standards.errors import NotFound
from gateway.standards.models import (
    TraceabilityNode,
)
from gateway.standards.registry.reading import load_standard
from gateway.standards.registry.records import StandardRecord, TraceabilityChain, TraceView
from metrology._common import from_attributes


def traceability_chain(db: sqlite3.Connection, standard_id: str) -> TraceabilityChain:
    """The chain through the standard's latest certificate, registered standards expanded."""
    standard = load_standard(db, standard_id)
    if standard is None:
        raise NotFound(f"no standard {standard_id}")
    open_ends: list[str] = []

    def expand_registered(record: StandardRecord, seen: frozenset[str]) -> TraceView:
        latest = record.latest_certificate
        view = TraceView(
            lab=record.owner_lab,
            standard=record.id,
            description=record.description,
            certificate=latest.number if latest else None,
            registered=True,
            calibrated_on=latest.calibration_date if latest else None,
        )
        if latest is None:
            open_ends.append(f"{record.owner_lab}: {record.id} (no certificate)")
            return view
        children = [node_view(node, seen | {record.id}) for node in latest.traceable_to]
        if not children:
            open_ends.append(
                f"{record.owner_lab}: {record.id} (certificate {latest.number} names no standard)"
            )
        return view.model_copy(update={"traceable_to": children})

    def node_view(node: TraceabilityNode, seen: frozenset[str]) -> TraceView:
        registered = None
        if node.standard not in seen:
            candidate = load_standard(db, node.standard)
            if candidate is not None and candidate.owner_lab == node.lab:
                registered = candidate
        if registered is not None and not node.traceable_to:
            expanded = expand_registered(registered, seen)
            return expanded.model_copy(
                update={"certificate": node.certificate or expanded.certificate}
            )
        children = [node_view(child, seen) for child in node.traceable_to]
        if not children and not node.national:
            open_ends.append(f"{node.lab}: {node.standard}")
        return from_attributes(TraceView, node, traceable_to=children)

    root = expand_registered(standard, frozenset())
    return TraceabilityChain(
        standard=standard_id, root=root, complete=not open_ends, open_ends=open_ends
    )
