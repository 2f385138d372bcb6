"""Usage rows -> totals and cost (priced from the model table when read)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._models import UsageReport, UsageTotals
from ._catalog import model_info

_TOKEN_FIELDS = ("input_tokens", "cache_write_5m", "cache_write_1h", "cache_read", "output_tokens")


def _add(totals: UsageTotals, row: Any) -> None:
    totals.calls += 1
    totals.attempts += row.attempts
    totals.failed += row.outcome.startswith("error:")
    for name in _TOKEN_FIELDS:
        setattr(totals, name, getattr(totals, name) + getattr(row, name))
    cost = model_info(row.model).cost(**{name: getattr(row, name) for name in _TOKEN_FIELDS},
                                      batch=row.service_tier == "batch")
    if cost is None:
        totals.unpriced_calls += 1 if any(getattr(row, n) for n in _TOKEN_FIELDS) else 0
    else:
        totals.cost_usd += cost


def usage_report(rows: Iterable[Any], *, user_id: str | None = None, session_id: str | None = None) -> UsageReport:
    report = UsageReport(user_id=user_id, session_id=session_id)
    for row in rows:
        _add(report.total, row)
        _add(report.by_model.setdefault(row.model, UsageTotals()), row)
        _add(report.by_purpose.setdefault(row.purpose, UsageTotals()), row)
    return report
