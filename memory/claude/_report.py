"""Usage rows -> totals and cost (priced from the model table when read)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._models import UsageReport, UsageTotals
from ._catalog import model_info

_TOKEN_FIELDS = ("input_tokens", "cache_write_5m", "cache_write_1h", "cache_read", "output_tokens")


def _add(totals: UsageTotals, row: Any, tokens: dict[str, int], cost: float | None) -> None:
    totals.calls += 1
    totals.attempts += row.attempts
    totals.failed += row.outcome.startswith("error:")
    for name, value in tokens.items():
        setattr(totals, name, getattr(totals, name) + value)
    if cost is not None:
        totals.cost_usd += cost
    elif any(tokens.values()):
        totals.unpriced_calls += 1


def usage_report(rows: Iterable[Any], *, user_id: str | None = None, session_id: str | None = None) -> UsageReport:
    report = UsageReport(user_id=user_id, session_id=session_id)
    for row in rows:
        tokens = {name: getattr(row, name) for name in _TOKEN_FIELDS}
        cost = model_info(row.model).cost(**tokens, batch=row.service_tier == "batch")  # once per row
        for totals in (report.total, report.by_model.setdefault(row.model, UsageTotals()),
                       report.by_purpose.setdefault(row.purpose, UsageTotals())):
            _add(totals, row, tokens, cost)
    return report
