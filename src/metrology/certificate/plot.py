"""The plot of a calibration report: the error of indication of each point with its ±U bar
against the tolerance band, as an inline SVG element (:mod:`metrology.certificate.report`).
"""

from __future__ import annotations

import math
from html import escape

from metrology.certificate.labels import word
from metrology.certificate.record import CalibrationRecord
from metrology.labels import Language

COLOURS = {
    "pass": "#1b7f3b",
    "conditional_pass": "#8a6d00",
    "conditional_fail": "#b35900",
    "fail": "#b3261e",
}


def _ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values covering [low, high]."""
    span = high - low
    if not span > 0:
        return [low]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


def _scale_prefix(magnitude: float, unit: str) -> tuple[float, str]:
    """A factor and a prefixed unit so that the numbers on an axis read well (µV, mV)."""
    if not magnitude > 0 or not unit:
        return 1.0, unit
    for factor, prefix in ((1.0, ""), (1e3, "m"), (1e6, "µ"), (1e9, "n")):
        if magnitude * factor >= 1:
            return factor, f"{prefix}{unit}"
    return 1e9, f"n{unit}"


def plot_svg(record: CalibrationRecord, lang: Language = "en") -> str:
    """The error of each measured point with its ±U bar, and the tolerance band (± MPE) — an
    inline SVG element."""
    width, height = 760, 340
    left, right, top, bottom = 78, 20, 16, 52
    points = [p for p in record.ok_points() if p.error is not None and p.budget is not None]
    unit = record.uut.unit
    if not points:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="60" role="img">'
            f'<text x="10" y="30">{escape(word("report.none", lang))}</text></svg>'
        )
    nominals = [p.nominal for p in points]
    by_position = len(set(nominals)) == len(nominals)
    xs = nominals if by_position else [float(p.index) for p in points]
    x_low, x_high = min(xs), max(xs)
    if x_low == x_high:
        x_low, x_high = x_low - 1.0, x_high + 1.0
    pad = (x_high - x_low) * 0.06
    x_low, x_high = x_low - pad, x_high + pad
    extent = 0.0
    for p in points:
        assert p.error is not None and p.budget is not None
        extent = max(extent, abs(p.error) + p.budget.expanded_uncertainty)
        if p.tolerance is not None:
            extent = max(extent, abs(p.tolerance.lower), abs(p.tolerance.upper))
    extent = extent * 1.15 if extent > 0 else 1.0
    factor, axis_unit = _scale_prefix(extent, unit)

    def sx(x: float) -> float:
        return left + (x - x_low) / (x_high - x_low) * (width - left - right)

    def sy(y: float) -> float:
        return top + (extent - y) / (2 * extent) * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="plot-title">',
        f'<title id="plot-title">{escape(word("report.plot", lang))}</title>',
        f'<rect x="{left}" y="{top}" width="{width - left - right}" '
        f'height="{height - top - bottom}" fill="#fff" stroke="#999"/>',
    ]
    ordered = sorted(
        (x, p.tolerance) for x, p in zip(xs, points, strict=True) if p.tolerance is not None
    )
    if ordered:
        if len(ordered) == 1:
            x0, band = ordered[0]
            half = (x_high - x_low) * 0.03
            ordered = [(x0 - half, band), (x0 + half, band)]
        upper = " ".join(f"{sx(x):.1f},{sy(b.upper):.1f}" for x, b in ordered)
        lower = " ".join(f"{sx(x):.1f},{sy(b.lower):.1f}" for x, b in reversed(ordered))
        parts.append(
            f'<polygon class="tolerance-band" points="{upper} {lower}" fill="#d8ecd8" '
            'stroke="#5a9a5a" stroke-width="1"/>'
        )
    for tick in _ticks(-extent, extent):
        y = sy(tick)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
            'stroke="#ddd" stroke-width="0.6"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{tick * factor:.4g}</text>"
        )
    parts.append(
        f'<line x1="{left}" y1="{sy(0):.1f}" x2="{width - right}" y2="{sy(0):.1f}" '
        'stroke="#555" stroke-width="1"/>'
    )
    for tick in _ticks(x_low, x_high) if by_position else sorted(set(xs)):
        x = sx(tick)
        parts.append(
            f'<text x="{x:.1f}" y="{height - bottom + 16}" font-size="11" '
            f'text-anchor="middle">{tick:.6g}</text>'
        )
    for x_value, p in zip(xs, points, strict=True):
        assert p.error is not None and p.budget is not None
        x = sx(x_value)
        u = p.budget.expanded_uncertainty
        colour = COLOURS.get(p.verdict.decision if p.verdict else "", "#333")
        y_top, y_bottom, y = sy(p.error + u), sy(p.error - u), sy(p.error)
        parts.append(
            f'<g class="point" data-index="{p.index}">'
            f'<line x1="{x:.1f}" y1="{y_top:.1f}" x2="{x:.1f}" y2="{y_bottom:.1f}" '
            f'stroke="{colour}" stroke-width="1.5"/>'
            f'<line x1="{x - 5:.1f}" y1="{y_top:.1f}" x2="{x + 5:.1f}" y2="{y_top:.1f}" '
            f'stroke="{colour}" stroke-width="1.5"/>'
            f'<line x1="{x - 5:.1f}" y1="{y_bottom:.1f}" x2="{x + 5:.1f}" y2="{y_bottom:.1f}" '
            f'stroke="{colour}" stroke-width="1.5"/>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/></g>'
        )
    x_title = word("report.plot.nominal", lang) + (f" ({unit})" if by_position and unit else "")
    if not by_position:
        x_title = word("report.col.point", lang)
    parts.append(
        f'<text x="{(left + width - right) / 2:.0f}" y="{height - 10}" font-size="12" '
        f'text-anchor="middle">{escape(x_title)}</text>'
    )
    parts.append(
        f'<text transform="translate(16,{(top + height - bottom) / 2:.0f}) rotate(-90)" '
        f'font-size="12" text-anchor="middle">'
        f"{escape(word('report.plot.error', lang))} ({escape(axis_unit)})</text>"
    )
    parts.append("</svg>")
    return "".join(parts)
