"""Path and query parameters the hub's routes check the same way (one pattern each)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from hub.labs import LAB_ID

STANDARD_ID = r"^[^\x00-\x1f\x7f]+$"
"""A standard's id: any text without control characters."""

LabId = Annotated[str, Path(pattern=LAB_ID)]
LabQuery = Annotated[str, Query(pattern=LAB_ID)]
AnyLabQuery = Annotated[str | None, Query(pattern=LAB_ID)]
StandardId = Annotated[str, Path(min_length=1, max_length=200, pattern=STANDARD_ID)]
AnyStandardQuery = Annotated[str | None, Query(max_length=200, pattern=STANDARD_ID)]
