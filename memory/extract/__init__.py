"""Extraction: turning turns into candidate facts."""

from ._base import Extractor
from ._dates import resolve_dates
from ._rules import RuleExtractor, statement

__all__ = ["Extractor", "RuleExtractor", "resolve_dates", "statement"]
