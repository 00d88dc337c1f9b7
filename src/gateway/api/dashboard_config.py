"""Config of what the gateway shows: the built-in dashboard, history queries, channel limits.

Light on purpose (pydantic only): the CLI imports it to validate gateway configs.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from core.models import FrozenModel, Name
from gateway.tsdb.config import HistoryQueryConfig


class ChannelMatch(FrozenModel):
    """Which channels a rule applies to: every field given must match (tags: all of them)."""

    site: Name | None = None
    agent: Name | None = None
    instrument: Name | None = None
    channel: Name | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    def matches(
        self, site: str, agent: str, instrument: str, channel: str, tags: dict[str, str]
    ) -> bool:
        """Whether a channel is one of these."""
        return (
            (self.site is None or self.site == site)
            and (self.agent is None or self.agent == agent)
            and (self.instrument is None or self.instrument == instrument)
            and (self.channel is None or self.channel == channel)
            and all(tags.get(k) == v for k, v in self.tags.items())
        )


class ChannelLimits(FrozenModel):
    """The limits a channel should stay within, e.g. a room's temperature 23 ± 1 °C
    (ISO/IEC 17025 §6.3). Shown on the dashboard; the first matching entry applies."""

    match: ChannelMatch
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ChannelLimits:
        if self.low is None and self.high is None:
            raise ValueError("give low, high or both")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError("low must be below high")
        return self


class DashboardConfig(FrozenModel):
    """The built-in dashboard and the read side of the API (served when ``api`` is set)."""

    ui: bool = Field(True, description="Serve the built-in web dashboard under /ui/.")
    history: HistoryQueryConfig = Field(default_factory=HistoryQueryConfig)
    limits: list[ChannelLimits] = Field(default_factory=list)
    stale_after_intervals: float = Field(
        3.0, ge=1, le=1000, description="A channel is stale after this many missed intervals."
    )
    room_tag: str = Field(
        "room",
        pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$",
        description="The channel tag that names a room (the overview groups the environment "
        "by it).",
    )
