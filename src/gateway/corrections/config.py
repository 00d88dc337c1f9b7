"""How the gateway corrects linked channels (the ``corrections`` section of its config).

Which certificate corrects which channel is a record (``etalon instruments link``, kept and
chained in the record store); how a channel is corrected and judged is configuration::

    corrections:
      channels:
        - channel: lab/bath-1/prt/temperature     # site/agent/instrument/channel; * ? [..]
          method: polynomial                      # linear (default) | polynomial
          degree: 2
          resolution: 0.001                       # the indication's digit step
          reading_uncertainty: 0.002              # u of each indication besides resolution
          tolerance: {mpe: 0.05}                  # or {lower: 20.0, upper: 22.0}
          decision_rule: {kind: guarded_acceptance, guard_factor: 1}
          coverage_factor: 2

The first entry whose pattern matches a channel applies; a linked channel that no entry names
is corrected piecewise linearly with no conformity check.
"""

from __future__ import annotations

import fnmatch
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from core.models import FrozenModel
from metrology.conformity import DecisionRule, RuleKind, Tolerance

_SEGMENT = r"[A-Za-z0-9_.\-*?\[\]!]+"
ChannelPattern = Annotated[
    str,
    Field(
        pattern=rf"^{_SEGMENT}(/{_SEGMENT}){{3}}$",
        description="site/agent/instrument/channel; shell wildcards (*, ?, [..]) in a segment.",
    ),
]


class ToleranceConfig(FrozenModel):
    """A maximum permissible error (judged on the instrument's error at the reading, −c(x)),
    or limits of the quantity the channel watches (judged on the corrected value)."""

    mpe: float | None = Field(None, gt=0, allow_inf_nan=False, description="± around 0 error.")
    lower: float | None = Field(None, allow_inf_nan=False)
    upper: float | None = Field(None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        limits = self.lower is not None or self.upper is not None
        if self.mpe is not None and limits:
            raise ValueError("give either mpe or lower/upper limits, not both")
        if self.mpe is None and not limits:
            raise ValueError("a tolerance needs mpe, or a lower and/or an upper limit")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"lower {self.lower} is above upper {self.upper}")
        return self

    @property
    def on_error(self) -> bool:
        """Whether the error of the indication is judged (mpe), not the corrected value."""
        return self.mpe is not None

    def tolerance(self) -> Tolerance:
        """As :mod:`metrology.conformity` takes it."""
        if self.mpe is not None:
            return Tolerance.symmetric(self.mpe)
        return Tolerance(lower=self.lower, upper=self.upper)


class DecisionRuleConfig(FrozenModel):
    """ILAC-G8 decision rule (docs/uncertainty.md §3)."""

    kind: RuleKind = "simple_acceptance"
    guard_factor: float = Field(1.0, ge=0, le=10, allow_inf_nan=False)

    def rule(self) -> DecisionRule:
        """As :mod:`metrology.conformity` takes it."""
        return DecisionRule(kind=self.kind, guard_factor=self.guard_factor)


class ChannelCorrection(FrozenModel):
    """How one channel (or a group, by pattern) is corrected and judged."""

    channel: ChannelPattern
    method: Literal["linear", "polynomial"] = "linear"
    degree: int = Field(1, ge=1, le=6, description="polynomial only")
    extrapolation: Literal["linear", "clamp"] = Field(
        "linear", description="linear only: outside the range, extend the end interval or clamp"
    )
    interpolation_component: bool = Field(True, description="linear: add the interpolation u")
    weighting: Literal["absolute", "relative"] = Field(
        "absolute", description="polynomial: the points' u as known, or as relative weights"
    )
    residual_component: bool = Field(True, description="polynomial: add the residual sd")
    resolution: float | None = Field(None, gt=0, allow_inf_nan=False)
    reading_uncertainty: float = Field(0.0, ge=0, allow_inf_nan=False)
    tolerance: ToleranceConfig | None = None
    decision_rule: DecisionRuleConfig = Field(default_factory=DecisionRuleConfig)
    coverage_factor: float = Field(
        2.0, ge=1, le=10, allow_inf_nan=False, description="k of the U the decision rule uses"
    )

    def matches(self, path: str) -> bool:
        """Whether this entry names the channel ``site/agent/instrument/channel``."""
        parts, wanted = path.split("/"), self.channel.split("/")
        return len(parts) == len(wanted) and all(
            fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted, strict=True)
        )

    def options(self) -> dict[str, object]:
        """The :class:`metrology.correction.ChannelCalibration` options of this entry."""
        return self.model_dump(include=set(CALIBRATION_OPTIONS))


CALIBRATION_OPTIONS = frozenset(
    {
        "method", "degree", "extrapolation", "interpolation_component", "weighting",
        "residual_component", "resolution", "reading_uncertainty",
    }
)  # fmt: skip
"""The fields of a :class:`ChannelCorrection` that are options of
:class:`metrology.correction.ChannelCalibration`, by the same names (not ``channel``: the entry's
is a pattern)."""


DEFAULT_CHANNEL = ChannelCorrection(channel="*/*/*/*")


class CorrectionsConfig(FrozenModel):
    """The ``corrections`` section (module doc)."""

    enabled: bool = Field(True, description="false: store raw values only, as before")
    channels: list[ChannelCorrection] = Field(default_factory=list, max_length=10_000)
    reload_s: float = Field(
        5.0,
        ge=0.5,
        le=3600,
        description="How often the gateway looks for links made by another process (the CLI).",
    )

    def for_channel(self, path: str) -> ChannelCorrection:
        """The first entry naming ``path``; the default (linear, no tolerance) otherwise."""
        for entry in self.channels:
            if entry.matches(path):
                return entry
        return DEFAULT_CHANNEL
