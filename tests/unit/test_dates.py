from datetime import date, datetime

import pytest

from tiermem.extract import resolve_dates

SAID = datetime(2023, 5, 8, 13, 56)  # a Monday


@pytest.mark.parametrize(
    ("text", "rewritten", "day"),
    [
        ("I went to a support group yesterday", "I went to a support group on 7 May 2023", date(2023, 5, 7)),
        ("I ran a race last week", "I ran a race in the week before 8 May 2023", date(2023, 5, 1)),
        ("we fly next month", "we fly in June 2023", date(2023, 6, 1)),
        ("I painted that last year", "I painted that in 2022", date(2022, 1, 1)),
        ("I adopted him two weeks ago", "I adopted him 2 weeks before 8 May 2023", date(2023, 4, 24)),
        ("I met her 3 days ago", "I met her on 5 May 2023", date(2023, 5, 5)),
        ("it's my birthday tomorrow", "it's my birthday on 9 May 2023", date(2023, 5, 9)),
        ("I went camping last weekend", "I went camping on the weekend before 8 May 2023", date(2023, 5, 6)),
        ("see you next Friday", "see you on Friday 12 May 2023", date(2023, 5, 12)),
        ("I got a promotion last month", "I got a promotion in April 2023", date(2023, 4, 1)),
        ("I felt great this morning", "I felt great on the morning of 8 May 2023", date(2023, 5, 8)),
    ],
)
def test_relative_dates_become_absolute(text: str, rewritten: str, day: date) -> None:
    assert resolve_dates(text, SAID) == (rewritten, day)


def test_text_without_dates_is_unchanged() -> None:
    assert resolve_dates("I love painting sunsets", SAID) == ("I love painting sunsets", None)


def test_month_arithmetic_crosses_years() -> None:
    assert resolve_dates("next month", datetime(2023, 12, 20))[0] == "in January 2024"
    assert resolve_dates("last month", datetime(2024, 1, 3))[0] == "in December 2023"
