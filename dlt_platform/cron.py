"""The cron dialect of source schedules: five fields of numbers (or month/day names), `*`, ranges, lists, steps.

`CRON_PATTERN` is the JSON Schema pattern both sides apply; `cron_problem` adds what a pattern cannot say
(ranges run upwards; no 30th/31st of February only, which Dagster refuses). The Worker's `cronProblem`
(worker/src/cron.ts) is the same function; config/definition_cases.json holds the cases both must agree on.
"""

from __future__ import annotations

import re

MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
WEEKDAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def _any_case(word: str) -> str:
    # JSON Schema patterns have no case-insensitive flag.
    return "".join(f"[{c.upper()}{c.lower()}]" for c in word)


def _field(values: str) -> str:
    item = rf"(\*|({values})(-({values}))?)(/[1-9][0-9]{{0,2}})?"
    return rf"{item}(,{item})*"


_MINUTE = r"[0-5]?[0-9]"
_HOUR = r"[01]?[0-9]|2[0-3]"
_DAY = r"0?[1-9]|[12][0-9]|3[01]"
_MONTH = r"0?[1-9]|1[0-2]|" + "|".join(_any_case(m) for m in MONTHS)
_WEEKDAY = r"0?[0-7]|" + "|".join(_any_case(d) for d in WEEKDAYS)

CRON_PATTERN = "^" + " +".join(f"({_field(v)})" for v in (_MINUTE, _HOUR, _DAY, _MONTH, _WEEKDAY)) + "$"
CRON_SYNTAX_MESSAGE = (
    "not a valid five-field cron expression: expected minute hour day month weekday of numbers, "
    "JAN-DEC / SUN-SAT, '*', ranges a-b, lists and /steps, separated by spaces"
)
CRON_DESCRIPTION = (
    "Cron in UTC: five fields (minute hour day month weekday) of numbers, JAN-DEC / SUN-SAT, '*', "
    "ascending ranges a-b, lists and /steps."
)

# (lowest value, highest value, names) per field
_FIELDS = [(0, 59, None), (0, 23, None), (1, 31, None), (1, 12, MONTHS), (0, 7, WEEKDAYS)]


def _value(token: str, low: int, names: list[str] | None) -> int:
    if token.isdigit():
        return int(token)
    if names is None:  # the pattern admits names only in the fields that have them
        raise ValueError(f"'{token}' is not a number")
    return names.index(token.upper()) + low


def _expand(part: str, low: int, high: int, names: list[str] | None) -> set[int]:
    values: set[int] = set()
    for item in part.split(","):
        body, _, step = item.partition("/")
        if body == "*":
            start, end = low, high
        else:
            first, _, last = body.partition("-")
            start = _value(first, low, names)
            end = _value(last, low, names) if last else (high if step else start)
        values.update(range(start, end + 1, int(step or 1)))
    return values


def cron_problem(expression: str) -> str | None:
    """Why `expression` is not a schedule of this platform, or None when it is one."""
    if not re.fullmatch(CRON_PATTERN, expression):
        return CRON_SYNTAX_MESSAGE.removeprefix("not a valid five-field cron expression: ")
    parts = expression.split()
    for part, (low, _high, names) in zip(parts, _FIELDS, strict=True):
        for item in part.split(","):
            body = item.partition("/")[0]
            if "-" in body:
                first, last = body.split("-")
                if _value(first, low, names) > _value(last, low, names):
                    return f"range {body} runs backwards"
    days, months = _expand(parts[2], 1, 31, None), _expand(parts[3], 1, 12, MONTHS)
    if months == {2} and len(days) == 1 and days <= {30, 31}:
        return "February has no 30th or 31st"
    return None


def runs_per_day(expression: str) -> int:
    """How many times a valid schedule fires on a day it fires at all: its minutes times its hours (the day, month
    and weekday fields only choose the days)."""
    parts = expression.split()
    return len(_expand(parts[0], 0, 59, None)) * len(_expand(parts[1], 0, 23, None))
