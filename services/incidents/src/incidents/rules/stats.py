"""Summaries of durations (MTTA, MTTR): count, mean, median and p90, in seconds."""

from __future__ import annotations

import math
from collections.abc import Iterable

from pydantic import BaseModel, Field


class DurationSummary(BaseModel):
    count: int = Field(
        description="How many incidents the figures are over.")
    mean: float | None = Field(
        description="The mean duration; null when no incident counts.")
    median: float | None = Field(
        description="The median duration; null when no incident counts.")
    p90: float | None = Field(
        description=("The 90th percentile: nine in ten took at most this long; null when no "
                     "incident counts."))
    unit: str = Field(
        default="seconds",
        description="The unit of the durations.")


def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) with linear interpolation between closest ranks."""
    if not sorted_values:
        raise ValueError("no values")
    position = (len(sorted_values) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


def summarize(durations: Iterable[float]) -> DurationSummary:
    """Count, mean, interpolated median and p90 of ``durations``; None values with no sample."""
    values = sorted(durations)
    if not values:
        return DurationSummary(count=0, mean=None, median=None, p90=None)
    return DurationSummary(
        count=len(values),
        mean=round(math.fsum(values) / len(values), 3),
        median=round(percentile(values, 0.5), 3),
        p90=round(percentile(values, 0.9), 3),
    )
