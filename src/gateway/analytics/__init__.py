"""Drift analytics of reference standards: pure functions returning frozen pydantic models.

- ``drift``: least-squares drift fits (mean, line, quadratic; OLS or WLS) with uncertainties,
  predictions, the value in use and the time until the prediction leaves a tolerance.
- ``control``: individuals/moving-range charts, Nelson rules 1-8, EWMA and tabular CUSUM.
- ``stability``: Allan, overlapping Allan and modified Allan deviation with confidence intervals.
- ``aggregate``: period (daily) means with their Type A standard uncertainty.

Every result serialises to documented JSON (``model_dump_json()``); see docs/drift.md.
"""

from gateway.analytics.aggregate import PeriodMean, PeriodMeans, period_means
from gateway.analytics.control import (
    ControlReport,
    CusumChart,
    EwmaChart,
    IndividualsLimits,
    RuleViolation,
    control_report,
    cusum_chart,
    ewma_chart,
    individuals_limits,
    nelson_rules,
)
from gateway.analytics.drift import (
    drift_report,
    fit_drift,
    predict,
    time_to_out_of_tolerance,
    value_in_use,
)
from gateway.analytics.drift_results import (
    DriftFit,
    DriftReport,
    Prediction,
    ToleranceCrossing,
    ValueInUse,
)
from gateway.analytics.errors import AnalyticsError
from gateway.analytics.stability import StabilityPoint, StabilityResult, allan_deviation

__all__ = [
    "AnalyticsError",
    "ControlReport",
    "CusumChart",
    "DriftFit",
    "DriftReport",
    "EwmaChart",
    "IndividualsLimits",
    "PeriodMean",
    "PeriodMeans",
    "Prediction",
    "RuleViolation",
    "StabilityPoint",
    "StabilityResult",
    "ToleranceCrossing",
    "ValueInUse",
    "allan_deviation",
    "control_report",
    "cusum_chart",
    "drift_report",
    "ewma_chart",
    "fit_drift",
    "individuals_limits",
    "nelson_rules",
    "period_means",
    "predict",
    "time_to_out_of_tolerance",
    "value_in_use",
]
