"""Date features: a column of dates or times ("2012-01-31", "2012-01-31 08:00") is read as the
numeric parts a model can use, the ones schema.yaml lists under the feature's parts.

pandas parses the dates (pd.to_datetime, any format it recognises, one per value) and gives the
parts (the .dt accessor). A model never reads the date itself: tomorrow's dates lie outside every
date it learnt from, while their year, month or weekday do not. The features, validation, the
API and drift monitoring all read a date through this module.
"""

import warnings

import pandas as pd

# The parts a date feature may use, as pandas names them (.dt.year ... .dt.hour).
DATE_PARTS = ("year", "month", "day", "day_of_week", "hour")


def parse_dates(values: pd.Series) -> pd.Series:
    """values as timestamps; NaT for a missing value and for anything that is not text
    naming a date (a number is not a date)."""
    text = values.where(values.map(lambda v: isinstance(v, str)))
    with warnings.catch_warnings():  # "could not infer format": a column of mixed formats
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    if getattr(parsed.dt, "tz", None) is not None:  # "...+02:00": its local time, as written
        parsed = parsed.dt.tz_localize(None)
    return parsed


def is_date(value: object) -> bool:
    """One value is text naming a date (the API's check of a request's value)."""
    return bool(parse_dates(pd.Series([value], dtype=object)).notna().iloc[0])


def varying_parts(values: pd.Series) -> tuple[str, ...]:
    """The parts that take more than one value in values: those a model can learn from (dates
    at midnight have no hour; the first of each month, no day)."""
    parsed = parse_dates(values).dropna()
    return tuple(part for part in DATE_PARTS if getattr(parsed.dt, part).nunique() > 1)


def part_name(feature: str, part: str) -> str:
    """The name of a date feature's part, in the model's inputs and the drift report."""
    return f"{feature}.{part}"


def date_parts(values: pd.Series, parts: tuple[str, ...]) -> pd.DataFrame:
    """The parts of each date as floats, NaN where the date is missing, named part_name."""
    parsed = parse_dates(values)
    columns = {part_name(str(values.name), p): getattr(parsed.dt, p).astype(float) for p in parts}
    return pd.DataFrame(columns, index=values.index)
