"""The traceability graph drawn as SVG: layers from the standards asked for (bottom) up to the
key comparisons and CMCs (top), one box per standard, one arrow per link, breaks in red.

Every text is escaped; classes name what a test or a style sheet looks for (``node
kind-standard``, ``link state-expired``, ``break-missing``).
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Final

from hub.graph import Graph, Node
from hub.messages import ui

BOX_W: Final = 230
BOX_H: Final = 62
GAP_X: Final = 36
GAP_Y: Final = 84
MARGIN: Final = 20
LEGEND_H: Final = 40
COLOURS: Final = {
    "ok": "#2f7d4f",
    "expired": "#c0392b",
    "missing": "#c0392b",
    "revoked": "#8e44ad",
}
STYLE: Final = """
.node rect { fill: #f4f6f8; stroke: #5b6b7f; stroke-width: 1.2; }
.node.kind-national rect { fill: #e8f1fb; stroke: #1f5fa8; stroke-width: 2; }
.node.kind-kcdb_comparison rect, .node.kind-cmc rect { fill: #fff7e0; stroke: #b7860b; }
.node.kind-unresolved rect { fill: #fdecea; stroke: #c0392b; stroke-dasharray: 5 3; }
.node.break-missing rect, .node.break-revoked rect { stroke: #c0392b; stroke-width: 2.4; }
.node text { font: 12px system-ui, sans-serif; fill: #1d2733; }
.node text.title { font-weight: 600; }
.link { fill: none; stroke-width: 2; }
.link.state-expired, .link.state-missing { stroke-dasharray: 7 4; stroke-width: 3; }
.link.state-revoked { stroke-dasharray: 2 3; stroke-width: 3; }
.link-label { font: 11px system-ui, sans-serif; }
.legend text { font: 12px system-ui, sans-serif; fill: #1d2733; }
"""


def _date(ns: int | None) -> str:
    if ns is None:
        return ""
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).date().isoformat()


def _cut(text: str, limit: int = 32) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _lines(node: Node, lang: str) -> tuple[str, str, str]:
    if node.kind in ("kcdb_comparison", "cmc"):
        return ui(f"hub.ui.node.{node.kind}", lang), node.ref or "", ""
    kind = "national" if node.national is not None else node.kind
    label = ui(f"hub.ui.node.{kind}", lang)
    title = node.standard or ""
    where = node.lab_name or node.lab or ""
    if node.national:
        label = f"{label} · {node.national}"
    return _cut(title), _cut(where), _cut(label, 36)


def render(graph: Graph, lang: str) -> str:
    """The graph as a standalone SVG document (UTF-8 text)."""
    layers: dict[int, list[Node]] = {}
    for node in graph.nodes.values():
        layers.setdefault(node.depth, []).append(node)
    depth = max(layers) if layers else 0
    widest = max((len(nodes) for nodes in layers.values()), default=1)
    width = MARGIN * 2 + widest * BOX_W + (widest - 1) * GAP_X
    height = MARGIN * 2 + (depth + 1) * BOX_H + depth * GAP_Y + LEGEND_H
    places: dict[str, tuple[float, float]] = {}
    for level, nodes in layers.items():
        nodes.sort(key=lambda n: n.key)
        row_w = len(nodes) * BOX_W + (len(nodes) - 1) * GAP_X
        left = (width - row_w) / 2
        top = MARGIN + (depth - level) * (BOX_H + GAP_Y)
        for index, node in enumerate(nodes):
            places[node.key] = (left + index * (BOX_W + GAP_X), top)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="traceability" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="{escape(ui("hub.ui.standard.traceability", lang))}">',
        f"<style>{STYLE}</style>",
        "<defs>",
    ]
    for state, colour in COLOURS.items():
        out.append(
            f'<marker id="arrow-{state}" viewBox="0 0 10 10" refX="9" refY="5" '
            f'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
            f'<path d="M 0 0 L 10 5 L 0 10 z" fill="{colour}"/></marker>'
        )
    out.append("</defs>")
    for link in graph.links:
        if link.source not in places or link.target not in places:
            continue
        sx, sy = places[link.source]
        tx, ty = places[link.target]
        x1, y1 = sx + BOX_W / 2, sy
        x2, y2 = tx + BOX_W / 2, ty + BOX_H
        colour = COLOURS[link.state]
        label = link.certificate or ""
        if link.valid_until_ns is not None:
            until = ui("hub.ui.graph.until", lang, date=_date(link.valid_until_ns))
            label = f"{label} · {until}" if label else until
        if link.state != "ok":
            state_text = ui(f"hub.ui.link.{link.state}", lang)
            label = f"{label} ({state_text})" if label else state_text
        mid_y = (y1 + y2) / 2
        out.append(
            f'<g class="link-group" data-from="{escape(link.source)}" '
            f'data-to="{escape(link.target)}" data-state="{link.state}">'
            f'<path class="link state-{link.state} origin-{escape(link.origin)}" '
            f'd="M {x1:.1f} {y1:.1f} C {x1:.1f} {mid_y:.1f}, {x2:.1f} {mid_y:.1f}, '
            f'{x2:.1f} {y2 + 2:.1f}" stroke="{colour}" marker-end="url(#arrow-{link.state})"/>'
            f'<text class="link-label" x="{(x1 + x2) / 2 + 6:.1f}" y="{mid_y:.1f}" '
            f'fill="{colour}">{escape(_cut(label, 48))}</text></g>'
        )
    for node in graph.nodes.values():
        x, y = places[node.key]
        kind = "national" if node.national is not None else node.kind
        classes = " ".join(["node", f"kind-{kind}", *(f"break-{b}" for b in node.breaks)])
        first, second, third = _lines(node, lang)
        broken = ""
        if node.breaks:
            broken = " · ".join(ui(f"hub.ui.link.{b}", lang) for b in node.breaks)
            third = _cut(f"{third} — {broken}", 38) if third else broken
        out.append(
            f'<g class="{classes}" data-key="{escape(node.key)}">'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="6"/>'
            f'<text class="title" x="{x + 10:.1f}" y="{y + 18:.1f}">{escape(first)}</text>'
            f'<text x="{x + 10:.1f}" y="{y + 35:.1f}">{escape(second)}</text>'
            f'<text x="{x + 10:.1f}" y="{y + 52:.1f}">{escape(third)}</text></g>'
        )
    legend_y = height - LEGEND_H + 16
    out.append('<g class="legend">')
    x = MARGIN
    for state in ("ok", "expired", "missing", "revoked"):
        dash = "" if state == "ok" else ' stroke-dasharray="7 4"'
        text = ui(f"hub.ui.link.{state}", lang)
        out.append(
            f'<line x1="{x}" y1="{legend_y}" x2="{x + 28}" y2="{legend_y}" '
            f'stroke="{COLOURS[state]}" stroke-width="3"{dash}/>'
            f'<text x="{x + 34}" y="{legend_y + 4}">{escape(text)}</text>'
        )
        x += 44 + 8 * len(text)
    out.append("</g></svg>")
    return "".join(out)
