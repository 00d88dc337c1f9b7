"""A printable HTML report of a calibration run, in English or Vietnamese.

One self-contained page (no script, no font, no request anywhere: it prints and archives as it
is): the run, the laboratory and customer, the unit under test as declared and as it identified
itself, the reference and its certificate, the environment, the decision rule, a plot of the
error of indication ± U against the tolerance band (inline SVG), the results table, every
point's uncertainty budget, the instrument writes of the audit and the notes. Every text from the
record is escaped.

One page, section by section, each function beside its markup; the plot is
:mod:`metrology.certificate.plot`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from html import escape

from metrology.certificate.labels import certificate_line, contribution_label, word
from metrology.certificate.plot import plot_svg
from metrology.certificate.record import (
    CalibrationRecord,
    EnvironmentStats,
    Party,
    PointResult,
)
from metrology.labels import Language

STYLE = """
body { font-family: "DejaVu Sans", "Noto Sans", Arial, sans-serif; font-size: 10.5pt;
       color: #111; margin: 2em auto; max-width: 62em; line-height: 1.35; }
h1 { font-size: 1.6em; margin: 0 0 .2em; } h2 { font-size: 1.2em; margin: 1.4em 0 .4em;
  border-bottom: 1px solid #999; } h3 { font-size: 1em; margin: 1em 0 .3em; }
table { border-collapse: collapse; width: 100%; margin: .3em 0 .8em; }
th, td { border: 1px solid #bbb; padding: .2em .4em; text-align: left; vertical-align: top; }
th { background: #eee; } td.num { text-align: right; font-variant-numeric: tabular-nums;
  white-space: nowrap; }
table.facts th { width: 28%; } .decision { font-weight: bold; }
.pass { color: #1b7f3b; } .fail { color: #b3261e; } .conditional_pass { color: #8a6d00; }
.conditional_fail { color: #b35900; } .incomplete { color: #b3261e; }
.small { font-size: .85em; color: #444; } code { font-size: .9em; word-break: break-all; }
figure { margin: .5em 0; } figcaption { font-size: .9em; color: #333; }
svg text { font-family: inherit; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; }
  table, figure, section.budget { break-inside: avoid; } }
"""


def _number(value: float | None, digits: int = 9) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞"
    return f"{value:.{digits}g}"


def _same_place(value: float | None, rounded: Decimal) -> str:
    """A value to the decimal place of a rounded result (two more digits: it is not the
    result itself)."""
    if value is None:
        return "—"
    exponent = rounded.as_tuple().exponent
    assert isinstance(exponent, int)
    place = Decimal(1).scaleb(exponent - 2)
    return f"{Decimal(repr(value)).quantize(place, rounding=ROUND_HALF_EVEN):f}"


def _time(ns: int) -> str:
    moment = dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _cells(values: Iterable[str], tag: str = "td", numeric: Sequence[bool] = ()) -> str:
    out = []
    for index, value in enumerate(values):
        css = ' class="num"' if index < len(numeric) and numeric[index] else ""
        out.append(f"<{tag}{css}>{value}</{tag}>")
    return "<tr>" + "".join(out) + "</tr>"


def _party(party: Party) -> str:
    parts = [party.name]
    if party.code:
        parts.append(party.code)
    address = ", ".join(p for p in (party.street, party.post_code, party.city) if p)
    if address:
        parts.append(address)
    parts.append(party.country_code)
    parts.append(party.email)
    return escape(" · ".join(parts))


def _identity(identity: dict[str, str], lang: Language) -> str:
    if not identity:
        return escape(word("report.identity_none", lang))
    return escape(", ".join(f"{key}: {value}" for key, value in identity.items()))


def _environment_line(stats: EnvironmentStats, lang: Language) -> str:
    return word(
        "report.env.line",
        lang,
        mean=f"{stats.mean:.2f}",
        unit=stats.unit,
        minimum=f"{stats.minimum:.2f}",
        maximum=f"{stats.maximum:.2f}",
        n=stats.n,
    )


def _decision_cell(decision: str, lang: Language) -> str:
    text = (
        word("report.decision.incomplete", lang)
        if decision == "incomplete"
        else word(decision, lang)
    )
    return f'<span class="decision {escape(decision)}">{escape(text)}</span>'


# -- tables -------------------------------------------------------------------------------------


def _results_table(record: CalibrationRecord, lang: Language) -> str:
    head = [
        word(key, lang)
        for key in (
            "report.col.point",
            "report.col.nominal",
            "report.col.range",
            "report.col.reference",
            "report.col.indication",
            "report.col.error",
            "report.col.k",
            "report.col.dof",
            "report.col.mpe",
            "report.col.decision",
        )
    ]
    rows = [_cells((escape(h) for h in head), "th")]
    numeric = (True, True, True, True, True, True, True, True, True, False)
    for p in record.points:
        unit = escape(p.unit)
        nominal = f"{_number(p.nominal)} {unit}"
        range_text = f"{_number(p.range)} {unit}" if p.range is not None else "—"
        if p.status != "ok" or p.budget is None or p.rounded is None:
            reason = escape(word("report.failed", lang, reason=p.reason or ""))
            rows.append(
                f'<tr class="failed" data-index="{p.index}"><td class="num">{p.index + 1}</td>'
                f'<td class="num">{nominal}</td><td class="num">{range_text}</td>'
                f'<td colspan="7" class="fail">{reason}</td></tr>'
            )
            continue
        mpe = f"± {_number(p.tolerance.mpe, 3)} {unit}" if p.tolerance else "—"
        cells = (
            str(p.index + 1),
            nominal,
            range_text,
            f"{_same_place(p.reference_value, p.rounded.value)} {unit}",
            f"{_same_place(p.indication, p.rounded.value)} {unit}",
            escape(p.rounded.text.split(" (k")[0]),
            f"{p.budget.coverage_factor:.2f}",
            _number(p.budget.effective_dof, 3),
            mpe,
            _decision_cell(p.verdict.decision if p.verdict else "incomplete", lang),
        )
        rows.append(
            _cells(cells, numeric=numeric).replace("<tr>", f'<tr data-index="{p.index}">', 1)
        )
    return '<table class="results" id="results">' + "".join(rows) + "</table>"


def _budget_table(point: PointResult, lang: Language) -> str:
    budget = point.budget
    assert budget is not None
    head = [
        word("quantity", lang),
        word("estimate", lang),
        word("distribution", lang),
        word("report.budget.quoted", lang),
        word("report.budget.divisor", lang),
        word("standard_uncertainty", lang),
        word("sensitivity", lang),
        word("contribution", lang),
        word("dof", lang),
        word("report.budget.share", lang),
    ]
    rows = [_cells((escape(h) for h in head), "th")]
    numeric = (False, True, False, True, True, True, True, True, True, True)
    for row in budget.contributions:
        unit = f" {escape(row.unit)}" if row.unit else ""
        cells = (
            escape(contribution_label(row.name, lang))
            + (f'<br><span class="small">{escape(row.note)}</span>' if row.note else ""),
            f"{_number(row.estimate, 10)}{unit}",
            escape(f"{word(row.distribution, lang)}, {word(row.evaluation, lang)}"),
            f"{_number(row.quoted, 4)}{unit}",
            _number(row.divisor, 4),
            f"{_number(row.standard_uncertainty, 4)}{unit}",
            _number(row.sensitivity, 4),
            f"{_number(row.contribution, 4)} {escape(budget.unit)}",
            _number(row.dof, 3),
            f"{row.variance_fraction * 100:.1f} %",
        )
        rows.append(_cells(cells, numeric=numeric))
    total = word(
        "report.budget.total",
        lang,
        uc=f"{_number(budget.combined_standard_uncertainty, 4)} {budget.unit}",
        dof=_number(budget.effective_dof, 4),
        k=f"{budget.coverage_factor:.3f}",
        U=f"{_number(budget.expanded_uncertainty, 4)} {budget.unit}",
    )
    title = word(
        "report.budget.point",
        lang,
        index=point.index + 1,
        nominal=_number(point.nominal),
        unit=point.unit,
    )
    settling = ""
    if point.settling is not None and point.settling.settled:
        settling = " — " + word("report.settling", lang, seconds=f"{point.settling.seconds:.1f}")
    return (
        f'<section class="budget" data-index="{point.index}"><h3>{escape(title)}'
        f"{escape(settling)}</h3>"
        '<table class="budget">' + "".join(rows) + "</table>"
        f'<p class="small">{escape(total)}</p></section>'
    )


def _writes_table(record: CalibrationRecord, lang: Language) -> str:
    failed = sum(1 for w in record.writes if not w.ok)
    summary = word("report.writes.summary", lang, count=len(record.writes), failed=failed)
    head = [
        word(key, lang)
        for key in (
            "report.started",
            "report.col.instrument",
            "report.col.target",
            "report.col.value",
            "report.col.sent",
            "report.col.outcome",
        )
    ]
    rows = [_cells((escape(h) for h in head), "th")]
    for entry in record.writes:
        target = entry.target or word("report.purpose.safe_state", lang)
        if entry.purpose == "safe_state" and entry.target:
            target = f"{entry.target} ({word('report.purpose.safe_state', lang)})"
        value = "" if entry.value is None else str(entry.value)
        outcome = (
            word("report.ok", lang)
            if entry.ok
            else word("report.write_failed", lang, error=entry.error or "")
        )
        rows.append(
            _cells(
                (
                    escape(_time(entry.started_ns)),
                    escape(entry.instrument),
                    escape(target),
                    escape(f"{value} {entry.unit}".strip()),
                    "<code>" + escape("; ".join(entry.sent)) + "</code>",
                    escape(outcome),
                )
            )
        )
    return (
        f"<details><summary>{escape(summary)}</summary>"
        '<table class="writes">' + "".join(rows) + "</table></details>"
    )


def render_html(
    record: CalibrationRecord, lang: Language = "en", record_sha256: str | None = None
) -> str:
    """The report as one HTML document (see the module doc)."""
    uut = record.uut
    facts: list[tuple[str, str]] = [
        (word("report.run", lang), f"<code>{escape(record.run)}</code>"),
        (
            word("report.procedure", lang),
            escape(f"{record.procedure.title} ({record.procedure.id}, {record.procedure.version})"),
        ),
        (word("report.laboratory", lang), _party(record.laboratory)),
    ]
    if record.customer is not None:
        facts.append((word("report.customer", lang), _party(record.customer)))
    facts += [
        (word("report.location", lang), escape(f"{record.site} / {record.bench_agent}")),
        (word("report.operator", lang), escape(record.operator)),
        (word("report.started", lang), escape(_time(record.started_ns))),
        (word("report.finished", lang), escape(_time(record.finished_ns))),
    ]
    uut_facts = [
        (word("report.description", lang), escape(uut.description)),
        (word("report.declared", lang), _identity(uut.declared, lang)),
        (
            word("report.identity_read", lang),
            _identity(uut.identity_start, lang) + " / " + _identity(uut.identity_end, lang),
        ),
        (word("report.specification", lang), escape(uut.specification)),
        (word("report.resolution", lang), escape(f"{_number(uut.resolution)} {uut.unit}")),
    ]
    reference = record.reference
    kind = word(f"report.reference.{reference.kind}", lang)
    reference_facts = [
        (
            word("report.reference", lang),
            escape(f"{reference.description} ({kind} {reference.name})"),
        ),
        (word("report.value_from", lang), escape(reference.value_from)),
        (word("report.run_date", lang), escape(record.run_date.isoformat())),
    ]
    certificate = reference.certificate
    if certificate is not None:
        text = escape(certificate_line(certificate, lang))
        if certificate.expired:
            text += (
                f' <strong class="fail">{escape(word("report.certificate.expired", lang))}</strong>'
            )
        if certificate.dcc_sha256:
            text += (
                f'<br><span class="small">DCC SHA-256 <code>{certificate.dcc_sha256}</code></span>'
            )
        if certificate.signature:
            text += f'<br><span class="small">{escape(certificate.signature)}</span>'
        reference_facts.append((word("report.certificate", lang), text))
    for instrument in record.instruments:
        role = word("report.role." + instrument.role, lang)
        reference_facts.append(
            (
                f"{word('report.instruments', lang)} ({role})",
                escape(f"{instrument.name} ({instrument.protocol}): ")
                + _identity(instrument.identity, lang),
            )
        )
    environment = [
        (
            word(f"report.{stats.quantity}", lang),
            escape(_environment_line(stats, lang) + f" — {stats.instrument}/{stats.channel}"),
        )
        for stats in record.environment
    ]
    rule_text = f"{word(record.decision_rule.kind, lang)} — {record.decision_rule.describe()}"
    method_facts = [
        (word("report.decision_rule", lang), escape(rule_text)),
        (
            word("coverage_probability", lang),
            escape(
                word(
                    "report.coverage",
                    lang,
                    p=f"{record.coverage_probability * 100:.2f}",
                )
            ),
        ),
        (word("report.decision", lang), _decision_cell(record.decision, lang)),
    ]

    def facts_table(rows: list[tuple[str, str]], css: str) -> str:
        return (
            f'<table class="facts {css}">'
            + "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
            + "</table>"
        )

    budgets = "".join(_budget_table(p, lang) for p in record.ok_points() if p.budget)
    notes = ""
    if record.notes:
        notes = (
            f"<h2>{escape(word('report.notes', lang))}</h2><ul>"
            + "".join(f"<li>{escape(n)}</li>" for n in record.notes)
            + "</ul>"
        )
    hashes = [
        f"{escape(word('report.procedure_hash', lang))}: <code>{record.procedure.sha256}</code>"
    ]
    if record_sha256 is not None:
        hashes.append(
            f"{escape(word('report.record_hash', lang))}: <code>{escape(record_sha256)}</code>"
        )
    hashes.append(f"{escape(word('report.software', lang))}: {escape(record.software)}")
    title = word("report.title", lang)
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} — {escape(record.run)}</title>"
        f"<style>{STYLE}</style></head><body>"
        f'<h1 id="report-title">{escape(title)}</h1>'
        f'<p class="small">{escape(word("report.statement", lang))}</p>'
        + facts_table(facts, "run")
        + f"<h2>{escape(word('report.uut', lang))}</h2>"
        + facts_table(uut_facts, "uut")
        + f"<h2>{escape(word('report.reference', lang))}</h2>"
        + facts_table(reference_facts, "reference")
        + (
            f"<h2>{escape(word('report.environment', lang))}</h2>"
            + facts_table(environment, "environment")
            if environment
            else ""
        )
        + f"<h2>{escape(word('report.results', lang))}</h2>"
        + facts_table(method_facts, "method")
        + f'<figure id="plot">{plot_svg(record, lang)}'
        + f"<figcaption>{escape(word('report.plot', lang))}</figcaption></figure>"
        + _results_table(record, lang)
        + f"<h2>{escape(word('report.budgets', lang))}</h2>"
        + budgets
        + f"<h2>{escape(word('report.writes', lang))}</h2>"
        + _writes_table(record, lang)
        + notes
        + f'<p class="small">{"<br>".join(hashes)}</p>'
        + "</body></html>"
    )
