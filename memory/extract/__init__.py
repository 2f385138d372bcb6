"""Extraction: turning turns into candidate facts."""

from ._base import Extractor
from ._dates import resolve_dates
from ._rules import RuleExtractor

__all__ = ["Extractor", "RuleExtractor", "resolve_dates"]
