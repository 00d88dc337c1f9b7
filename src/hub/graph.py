"""The traceability graph across labs: which standard calibrated which, up to the national
standard and the BIPM key comparison or CMC that underpins it — with its breaks.

Links come from two places (``trace_links``): the labs' certificates (the reference standard a
certificate or a DCC's measuring equipment names, valid until that certificate is due) and the
national institute (``etalon hub link``: a standard designated national, a key comparison or a
CMC underpinning it, or a calibration link it vouches for). A standard's certificate links are
those of its latest certificate; earlier ones were superseded.

A reference is named as the certificate names it — a lab (its id or name) and a standard (its
id, description or serial) — and resolved against the enrolled labs; failing that, the
reference's own certificate number finds the standard that holds it.

Breaks, on links: ``expired`` (the certificate is past due, or the institute's link past its
date), ``missing`` (the reference is not known at the hub), ``revoked`` (the lab at either end
is revoked); on standards: ``missing`` (nothing above it: the chain ends short of a national
standard, or a national standard with no key comparison or CMC).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

from hub.db import Connection, fetch_all, fetch_one

MAX_NODES: Final = 400
MAX_DEPTH: Final = 16

NodeKind = Literal["standard", "kcdb_comparison", "cmc", "unresolved"]
LinkState = Literal["ok", "expired", "missing", "revoked"]


@dataclass
class Node:
    """A standard at a lab, a key comparison or CMC, or a reference the hub cannot resolve."""

    key: str
    kind: NodeKind
    lab: str | None = None
    lab_name: str | None = None
    standard: str | None = None
    description: str | None = None
    ref: str | None = None
    national: str | None = None
    """The institute's designation, when this standard is a national standard."""
    depth: int = 0
    breaks: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The API's form (every field, by name)."""
        return asdict(self)


@dataclass
class Link:
    """``source`` calibrated by (traceable to) ``target``."""

    source: str
    target: str
    origin: str
    state: LinkState
    certificate: str | None
    valid_until_ns: int | None
    link_id: int

    def as_json(self) -> dict[str, Any]:
        """The API's form."""
        return {
            "from": self.source,
            "to": self.target,
            "origin": self.origin,
            "state": self.state,
            "certificate": self.certificate,
            "valid_until_ns": self.valid_until_ns,
            "id": self.link_id,
        }


@dataclass
class Graph:
    """The part of the graph above the standards asked for."""

    roots: list[str]
    nodes: dict[str, Node]
    links: list[Link]
    complete: bool
    """Whether every standard asked for reaches a key comparison or CMC over unbroken links."""
    truncated: bool = False

    def as_json(self) -> dict[str, Any]:
        """The API's form."""
        return {
            "roots": self.roots,
            "complete": self.complete,
            "truncated": self.truncated,
            "nodes": [n.as_json() for n in self.nodes.values()],
            "links": [link.as_json() for link in self.links],
        }


def standard_key(lab: str, standard: str) -> str:
    """The node key of a standard."""
    return f"standard:{lab}/{standard}"


class _Resolver:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.labs: dict[str, dict[str, Any]] = {}
        self.by_name: dict[str, str] = {}

    async def load_labs(self) -> None:
        for row in await fetch_all(self.conn, "SELECT id, name, revoked_ns FROM labs"):
            self.labs[row["id"]] = row
            self.by_name.setdefault(row["name"].strip().lower(), row["id"])
            self.by_name.setdefault(row["id"].lower(), row["id"])

    def lab(self, named: str | None) -> str | None:
        if named is None:
            return None
        return named if named in self.labs else self.by_name.get(named.strip().lower())

    async def standard(
        self, lab: str | None, named: str, certificate: str | None
    ) -> tuple[str, str] | None:
        if lab is not None:
            row = await fetch_one(
                self.conn,
                "SELECT standard_id FROM standards WHERE lab = %s AND (standard_id = %s "
                "OR lower(description) = lower(%s) OR lower(serial) = lower(%s)) "
                "ORDER BY standard_id = %s DESC LIMIT 1",
                (lab, named, named, named, named),
            )
            if row is not None:
                return lab, str(row["standard_id"])
        if certificate:
            row = await fetch_one(
                self.conn,
                "SELECT lab, standard_id FROM certificates WHERE number = %s "
                "AND standard_id IS NOT NULL AND (%s::text IS NULL OR lab = %s) "
                "ORDER BY calibration_ns DESC NULLS LAST LIMIT 1",
                (certificate, lab, lab),
            )
            if row is not None:
                return str(row["lab"]), str(row["standard_id"])
        return None


async def traceability(
    conn: Connection,
    lab: str,
    standard: str | None = None,
    now_ns: int | None = None,
) -> Graph:
    """The graph above one standard of ``lab``, or above every standard of it."""
    now = time.time_ns() if now_ns is None else now_ns
    resolver = _Resolver(conn)
    await resolver.load_labs()
    if standard is not None:
        starts = [standard]
    else:
        starts = [
            row["standard_id"]
            for row in await fetch_all(
                conn,
                "SELECT standard_id FROM standards WHERE lab = %s ORDER BY standard_id LIMIT 200",
                (lab,),
            )
        ]
    nodes: dict[str, Node] = {}
    links: list[Link] = []
    queue: deque[str] = deque()
    roots = []
    for start in starts:
        key = standard_key(lab, start)
        roots.append(key)
        if key not in nodes:
            nodes[key] = await _standard_node(conn, resolver, lab, start, 0)
            queue.append(key)
    truncated = False
    while queue:
        key = queue.popleft()
        node = nodes[key]
        if node.kind != "standard" or node.lab is None or node.standard is None:
            continue
        if node.depth >= MAX_DEPTH or len(nodes) >= MAX_NODES:
            truncated = True
            continue
        for row in await _links_of(conn, node.lab, node.standard):
            target, target_node = await _target(conn, resolver, row, node.depth + 1)
            if target not in nodes:
                nodes[target] = target_node
                if target_node.kind == "standard":
                    queue.append(target)
            state = _state(row, now, node, nodes[target], resolver)
            links.append(
                Link(
                    key,
                    target,
                    row["source"],
                    state,
                    row["certificate"],
                    row["valid_until_ns"],
                    int(row["id"]),
                )
            )
    outgoing: dict[str, list[Link]] = {}
    for link in links:
        outgoing.setdefault(link.source, []).append(link)
    for node in nodes.values():
        if node.kind != "standard":
            continue
        mine = outgoing.get(node.key, [])
        if node.national is not None:
            if not any(nodes[link.target].kind in ("kcdb_comparison", "cmc") for link in mine):
                node.breaks.append("missing")
        elif not mine and not truncated:
            node.breaks.append("missing")
        if node.lab is not None and resolver.labs.get(node.lab, {}).get("revoked_ns"):
            node.breaks.append("revoked")
    complete = all(_reaches_top(root, nodes, outgoing, set()) for root in roots) and bool(roots)
    return Graph(roots, nodes, links, complete, truncated)


def _reaches_top(
    key: str, nodes: dict[str, Node], outgoing: dict[str, list[Link]], seen: set[str]
) -> bool:
    if key in seen:
        return False
    seen = seen | {key}
    node = nodes[key]
    if node.kind in ("kcdb_comparison", "cmc"):
        return True
    if node.breaks:
        return False
    return any(
        link.state == "ok" and _reaches_top(link.target, nodes, outgoing, seen)
        for link in outgoing.get(key, [])
    )


async def _standard_node(
    conn: Connection, resolver: _Resolver, lab: str, standard: str, depth: int
) -> Node:
    row = await fetch_one(
        conn,
        "SELECT description FROM standards WHERE lab = %s AND standard_id = %s",
        (lab, standard),
    )
    designation = await fetch_one(
        conn,
        "SELECT to_ref FROM trace_links WHERE source = 'institute' AND to_kind = 'national' "
        "AND from_lab = %s AND from_standard = %s AND withdrawn_ns IS NULL "
        "ORDER BY id DESC LIMIT 1",
        (lab, standard),
    )
    node = Node(
        standard_key(lab, standard),
        "standard",
        lab=lab,
        lab_name=resolver.labs.get(lab, {}).get("name"),
        standard=standard,
        description=None if row is None else row["description"],
        national=None if designation is None else str(designation["to_ref"] or ""),
        depth=depth,
    )
    if row is None:
        node.breaks.append("missing")
    return node


async def _links_of(conn: Connection, lab: str, standard: str) -> list[dict[str, Any]]:
    """Institute links (not withdrawn) and the latest certificate's links of a standard."""
    return await fetch_all(
        conn,
        "SELECT * FROM trace_links WHERE from_lab = %s AND from_standard = %s "
        "AND withdrawn_ns IS NULL AND to_kind <> 'national' AND (source = 'institute' OR "
        "lab_certificate = (SELECT certificate_id FROM certificates WHERE lab = %s "
        "AND standard_id = %s ORDER BY calibration_ns DESC NULLS LAST, entry_seq DESC LIMIT 1)) "
        "ORDER BY id",
        (lab, standard, lab, standard),
    )


async def _target(
    conn: Connection, resolver: _Resolver, row: dict[str, Any], depth: int
) -> tuple[str, Node]:
    kind = row["to_kind"]
    if kind in ("kcdb_comparison", "cmc"):
        key = f"{kind}:{row['to_ref']}"
        return key, Node(key, kind, ref=row["to_ref"], depth=depth)
    lab = resolver.lab(row["to_lab"])
    found = await resolver.standard(lab, row["to_standard"] or "", row["to_ref"])
    if found is None:
        key = f"unresolved:{row['to_lab']}/{row['to_standard']}"
        node = Node(
            key,
            "unresolved",
            lab=lab,
            lab_name=row["to_lab"],
            standard=row["to_standard"],
            ref=row["to_ref"],
            depth=depth,
            breaks=["missing"],
        )
        return key, node
    key = standard_key(*found)
    return key, await _standard_node(conn, resolver, found[0], found[1], depth)


def _state(
    row: dict[str, Any], now: int, source: Node, target: Node, resolver: _Resolver
) -> LinkState:
    for lab in (source.lab, target.lab):
        if lab is not None and resolver.labs.get(lab, {}).get("revoked_ns"):
            return "revoked"
    if target.kind == "unresolved":
        return "missing"
    until = row["valid_until_ns"]
    if until is not None and until < now:
        return "expired"
    return "ok"
