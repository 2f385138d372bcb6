"""Resolving relative time expressions ('yesterday', 'last week', 'next month') against the
time a turn was said, so stored facts carry absolute dates that stay true later."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "a couple of": 2, "a couple": 2, "couple of": 2, "a few": 3, "few": 3,
}
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_SEASONS = {"spring": 3, "summer": 6, "fall": 9, "autumn": 9, "winter": 12}
_PARTS = "morning|afternoon|evening|night"


def fmt(day: date) -> str:
    return f"{day.day} {day:%B} {day.year}"


def _month_shift(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _saturday_on_or_after(day: date) -> date:
    return day + timedelta(days=(5 - day.weekday()) % 7)


def _rules(today: date) -> list[tuple[str, object]]:
    """(pattern, replacement(match) -> (text, event date)) in the order they are tried."""

    def fixed(text: str, when: date):  # noqa: ANN202
        return lambda _m: (text, when)

    def ago(m: re.Match[str]) -> tuple[str, date]:
        n = _NUMBERS.get(m["n"].lower()) if not m["n"].isdigit() else int(m["n"])
        unit = m["unit"].lower().rstrip("s")
        n = n or 1
        if unit == "day":
            when = today - timedelta(days=n)
            return f"on {fmt(when)}", when
        if unit == "week":
            when = today - timedelta(weeks=n)
            return f"{n} week{'s' if n > 1 else ''} before {fmt(today)}", when
        if unit == "month":
            when = _month_shift(today, -n)
            return f"in {when:%B} {when.year}", when
        return f"in {today.year - n}", date(today.year - n, 1, 1)

    def weekday(m: re.Match[str]) -> tuple[str, date]:
        target = _WEEKDAYS.index(m["day"].lower())
        if m["which"].lower() == "last":
            delta = (today.weekday() - target) % 7 or 7
            when = today - timedelta(days=delta)
        else:
            delta = (target - today.weekday()) % 7 or 7
            when = today + timedelta(days=delta)
        return f"on {m['day'].capitalize()} {fmt(when)}", when

    def season(m: re.Match[str]) -> tuple[str, date]:
        which, name = m["which"].lower(), m["season"].lower()
        year = today.year + {"last": -1, "this": 0, "next": 1}[which]
        start = _SEASONS[name]
        if which == "last" and (today.month - start) % 12 >= 3 and today.month > start:
            year = today.year  # 'last summer' said in November is this year's summer
        return f"in the {name} of {year}", date(year, start, 1)

    def part(m: re.Match[str], offset: int) -> tuple[str, date]:
        when = today + timedelta(days=offset)
        return f"on the {m['part'].lower()} of {fmt(when)}", when

    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)
    this_saturday = _saturday_on_or_after(today)
    last_saturday = this_saturday - timedelta(days=7) if today.weekday() < 5 else today - timedelta(days=today.weekday() - 5 + 7)
    next_month, last_month = _month_shift(today, 1), _month_shift(today, -1)
    return [
        (r"the day before yesterday", fixed(f"on {fmt(today - timedelta(days=2))}", today - timedelta(days=2))),
        (r"the day after tomorrow", fixed(f"on {fmt(today + timedelta(days=2))}", today + timedelta(days=2))),
        (rf"yesterday (?P<part>{_PARTS})", lambda m: part(m, -1)),
        (rf"tomorrow (?P<part>{_PARTS})", lambda m: part(m, 1)),
        (r"last night", fixed(f"on the night of {fmt(yesterday)}", yesterday)),
        (rf"this (?P<part>{_PARTS})", lambda m: part(m, 0)),
        (r"yesterday", fixed(f"on {fmt(yesterday)}", yesterday)),
        (r"tomorrow", fixed(f"on {fmt(tomorrow)}", tomorrow)),
        (r"today|tonight", fixed(f"on {fmt(today)}", today)),
        (r"(?P<n>\d+|a couple of|a couple|couple of|a few|few|an?|one|two|three|four|five|six|seven|eight|nine|ten) "
         r"(?P<unit>days?|weeks?|months?|years?) ago", ago),
        (r"last weekend", fixed(f"on the weekend before {fmt(today)}", last_saturday)),
        (r"this weekend", fixed(f"on the weekend of {fmt(this_saturday)}", this_saturday)),
        (r"next weekend", fixed(f"on the weekend of {fmt(this_saturday + timedelta(days=7))}", this_saturday + timedelta(days=7))),
        (r"last week", fixed(f"in the week before {fmt(today)}", today - timedelta(days=7))),
        (r"this week", fixed(f"in the week of {fmt(today)}", today)),
        (r"next week", fixed(f"in the week after {fmt(today)}", today + timedelta(days=7))),
        (r"last month", fixed(f"in {last_month:%B} {last_month.year}", last_month)),
        (r"this month", fixed(f"in {today:%B} {today.year}", date(today.year, today.month, 1))),
        (r"next month", fixed(f"in {next_month:%B} {next_month.year}", next_month)),
        (r"last year", fixed(f"in {today.year - 1}", date(today.year - 1, 1, 1))),
        (r"this year", fixed(f"in {today.year}", date(today.year, 1, 1))),
        (r"next year", fixed(f"in {today.year + 1}", date(today.year + 1, 1, 1))),
        (r"(?P<which>last|next|this) (?P<day>monday|tuesday|wednesday|thursday|friday|saturday|sunday)", weekday),
        (r"(?P<which>last|this|next) (?P<season>spring|summer|fall|autumn|winter)", season),
    ]


def resolve_dates(text: str, at: datetime) -> tuple[str, date | None]:
    """Rewrite relative time expressions in `text` as absolute ones.

    Returns the rewritten text and the date of the first expression found (the event date).

    >>> resolve_dates("I went hiking yesterday", datetime(2023, 5, 8))
    ('I went hiking on 7 May 2023', datetime.date(2023, 5, 7))
    """
    today = at.date()
    first: date | None = None
    for pattern, replace in _rules(today):
        regex = re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE)

        def sub(m: re.Match[str], replace: object = replace) -> str:
            nonlocal first
            try:
                new_text, when = replace(m)  # type: ignore[operator]
            except (ValueError, OverflowError):  # 'next month' in December 9999: leave it as said
                return m.group(0)
            if first is None:
                first = when
            return new_text

        text = regex.sub(sub, text)
    return text, first
