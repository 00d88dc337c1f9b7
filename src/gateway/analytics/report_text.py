"""The text reports of ``etalon drift fit|adev|chart`` in the reader's language (``--json``
prints the results as they are)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from core.i18n import known, t
from gateway.analytics import messages  # noqa: F401  (registers the report's messages)
from gateway.analytics.control import (
    ControlReport,
)
from gateway.analytics.drift_results import DriftReport
from gateway.analytics.stability import (
    StabilityResult,
)


def _g(value: float) -> str:
    return f"{value:.10g}"


def _u(value: float) -> str:
    return f"{value:.3g}"


def _dof(value: float, lang: str) -> str:
    return t("drift.infinite", lang) if math.isinf(value) else f"{value:g}"


def _where(x: float, date: str | None) -> str:
    return date if date is not None else _g(x)


def _known(prefix: str, word: str, lang: str) -> str:
    """A word of the library's results (model, term, side...) in ``lang``; itself if unknown."""
    key = f"{prefix}.{word}"
    return t(key, lang) if known(key) else word


def format_fit(report: DriftReport, lang: str = "en") -> str:
    """The drift report as text, in ``lang``."""
    fit = report.fit
    weighting = t("drift.ols", lang) if fit.weighting == "none" else (
        t("drift.wls", lang, weighting=fit.weighting)
    )  # fmt: skip
    unit = t("drift.per_day" if fit.x_kind == "date" else "drift.per_x", lang)
    model = _known("drift.model", fit.model, lang)
    lines = [
        t("drift.fit.head", lang, model=model, weighting=weighting, n=fit.n,
          dof=_dof(fit.dof, lang)),
        f"x0 = {_where(fit.x0, fit.x0_date)}"
        + (t("drift.x_in_days", lang) if fit.x_kind == "date" else ""),
    ]  # fmt: skip
    names = {c.name: _known("drift.term", c.name, lang) for c in fit.coefficients}
    width = max(10, *(len(name) for name in names.values()))
    for coefficient in fit.coefficients:
        suffix = {"intercept": t("drift.at_x0", lang), "slope": unit, "curvature": unit + "²"}
        lines.append(
            f"  {names[coefficient.name]:<{width}} = {_g(coefficient.value)} ± "
            f"{_u(coefficient.standard_uncertainty)}{suffix[coefficient.name]}"
        )
        if coefficient.name == "slope" and fit.x_kind == "date":
            lines.append(
                f"  {'':<{width}} = {_g(coefficient.value * 365.25)} ± "
                f"{_u(coefficient.standard_uncertainty * 365.25)}{t('drift.per_year', lang)}"
            )
    if len(fit.coefficients) > 1:
        lines.append("  " + t("drift.correlation", lang, value=f"{fit.correlation[0][1]:.4f}"))
    lines.append("  " + t("drift.residual_sd", lang, value=_u(fit.residual_sd)))
    if fit.birge_ratio is not None:
        lines.append(
            "  " + t("drift.birge", lang, ratio=f"{fit.birge_ratio:.3f}", chi2=f"{fit.chi2:.4g}")
        )
    if fit.selection is not None:
        lines.append(t("drift.selection", lang, alpha=f"{fit.selection.alpha:g}"))
        for step in fit.selection.steps:
            verdict = t("drift.significant" if step.significant else "drift.not_significant", lang)
            lines.append(
                "  "
                + t(
                    "drift.selection.step",
                    lang,
                    model=_known("drift.model", step.model, lang),
                    term=_known("drift.term", step.term, lang),
                    t=f"{step.t_statistic:.3f}",
                    critical=f"{step.critical_value:.3f}",
                    verdict=verdict,
                )
            )
        chosen = _known("drift.model", fit.selection.chosen, lang)
        lines.append("  " + t("drift.chosen", lang, model=chosen))
    prediction = report.prediction
    percent = f"{prediction.confidence * 100:g} %"
    extrapolated = t("drift.extrapolated", lang) if prediction.extrapolated else ""
    lines += [
        t("drift.prediction", lang, at=_where(prediction.x, prediction.date),
          extrapolated=extrapolated),
        "  " + t("drift.prediction.values", lang, value=_g(prediction.value),
                 u_fit=_u(prediction.u_fit), u_prediction=_u(prediction.u_prediction),
                 k=f"{prediction.coverage_factor:.3f}"),
        "  " + t("drift.ci", lang, percent=percent, low=_g(prediction.confidence_interval[0]),
                 high=_g(prediction.confidence_interval[1])),
        "  " + t("drift.pi", lang, percent=percent, low=_g(prediction.prediction_interval[0]),
                 high=_g(prediction.prediction_interval[1])),
    ]  # fmt: skip
    in_use = report.value_in_use
    lines.append(
        t(
            "drift.in_use",
            lang,
            value=_g(in_use.value),
            expanded=_u(in_use.expanded_uncertainty),
            k=f"{in_use.coverage_factor:.3f}",
            percent=percent,
            u=_u(in_use.standard_uncertainty),
        )
    )
    tolerance = report.tolerance
    if tolerance is not None:
        half = (tolerance.upper - tolerance.lower) / 2.0
        head = t("drift.tolerance", lang, nominal=_g(tolerance.nominal), half=_g(half))
        start = _where(tolerance.start, tolerance.start_date)
        if tolerance.already_outside:
            lines.append(head + t("drift.tolerance.outside", lang, percent=percent, start=start))
        elif tolerance.crossing is None:
            until = _where(tolerance.searched_until, tolerance.searched_until_date)
            lines.append(head + t("drift.tolerance.inside", lang, percent=percent, until=until))
        else:
            after = tolerance.time_to_crossing or 0.0
            span = t("drift.days", lang, days=f"{after:.1f}") if fit.x_kind == "date" else _g(after)
            lines.append(
                head
                + t(
                    "drift.tolerance.crossing",
                    lang,
                    percent=percent,
                    side=_known("drift.side", str(tolerance.side), lang),
                    when=_where(tolerance.crossing, tolerance.crossing_date),
                    span=span,
                    start=start,
                )
            )
    return "\n".join(lines)


def format_stability(result: StabilityResult, lang: str = "en") -> str:
    """The stability table as text, in ``lang``."""
    tau, m, deviation, low, high, edf, noise = t("drift.adev.columns", lang).split("|")
    lines = [
        t(
            "drift.adev.head",
            lang,
            title=t(f"drift.adev.{result.deviation}", lang),
            data=t(f"drift.adev.{result.data_type}", lang),
            n=result.n,
            rate=f"{result.rate_hz:g}",
            confidence=f"{result.confidence * 100:.1f}",
        ),
        f"{tau:>12} {m:>8} {deviation:>12} {low:>12} {high:>12} {edf:>10}  {noise}",
    ]
    for point in result.points:
        lines.append(
            f"{point.tau:>12.6g} {point.m:>8d} {point.deviation:>12.5e} {point.ci_low:>12.5e} "
            f"{point.ci_high:>12.5e} {point.edf:>10.4g}  {_known('drift.noise', point.noise, lang)}"
            f" ({_known('drift.alpha', point.alpha_source, lang)})"
        )
    return "\n".join(lines)


def format_chart(report: ControlReport, lines_of_points: Sequence[int], lang: str = "en") -> str:
    """The control charts as text, in ``lang``; points are numbered from 1, with their CSV
    line."""

    def point(index: int) -> str:
        return t("drift.chart.point", lang, number=index + 1, line=lines_of_points[index])

    def first(text: str) -> str:
        return t("drift.chart.first", lang, point=text)

    limits = report.limits
    lines = [
        t("drift.chart.head", lang, n=report.n, baseline=limits.baseline_n),
        "  " + t("drift.chart.limits", lang, center=_g(limits.center), sigma=_u(limits.sigma),
                 mr_bar=_u(limits.mr_bar), ucl=_g(limits.ucl), lcl=_g(limits.lcl),
                 mr_ucl=_u(limits.mr_ucl)),
        t("drift.chart.violations", lang, n=len(report.violations)),
    ]  # fmt: skip
    for violation in report.violations:
        side = f" [{_known('drift.chart.side', violation.side, lang)}]" if violation.side else ""
        lines.append(
            "  "
            + t(
                "drift.chart.violation",
                lang,
                point=point(violation.index),
                rule=violation.rule,
                name=violation.name_vi if lang == "vi" else violation.name,
                side=side,
                value=_g(violation.value),
                first=violation.first_index + 1,
            )
        )
    for signal in report.moving_range_signals:
        lines.append(
            "  "
            + t(
                "drift.chart.moving_range",
                lang,
                point=point(signal.index),
                value=_g(signal.moving_range),
            )
        )
    ewma = report.ewma
    lines.append(
        t("drift.chart.ewma", lang, lambda_=f"{ewma.lambda_:g}", L=f"{ewma.L:g}",
          n=len(ewma.signals))
        + (first(point(ewma.signals[0])) if ewma.signals else "")
    )  # fmt: skip
    cusum = report.cusum
    side = ""
    if cusum.signals:
        side = f" ({_known('drift.chart.side', cusum.signals[0].side, lang)})"
    lines.append(
        t("drift.chart.cusum", lang, k=f"{cusum.k:g}", h=f"{cusum.h:g}", n=len(cusum.signals))
        + (first(point(cusum.signals[0].index)) + side if cusum.signals else "")
    )
    return "\n".join(lines)
