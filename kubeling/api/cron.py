"""Cron schedules as robfig/cron v3's ParseStandard reads them (5 fields, ranges, steps, month
and weekday names, `?`, the @yearly/@monthly/@weekly/@daily/@hourly and @every descriptors, a
leading TZ=/CRON_TZ=), with its error messages: the apiserver returns them verbatim for an
invalid spec.schedule, and the CronJob controller evaluates schedules in a zoneinfo time zone."""
from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SEARCH_YEARS = 5        # robfig gives up (returns the zero time) when nothing matches within 5 years


class CronError(ValueError):
    """An unparseable schedule; str() is robfig's message."""


@dataclass(frozen=True)
class Bounds:
    low: int
    high: int
    names: dict[str, int]


MINUTES, HOURS, DOM = Bounds(0, 59, {}), Bounds(0, 23, {}), Bounds(1, 31, {})
MONTHS = Bounds(1, 12, {m: i + 1 for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))})
DOW = Bounds(0, 6, {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))})
DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
               "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_DURATION = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


@dataclass(frozen=True)
class Field:
    values: frozenset[int]
    star: bool          # `*` or `?` without a step > 1: matters for how day-of-month and weekday combine


def _int(text: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise CronError(f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax')
    n = int(text)
    if n < 0:
        raise CronError(f"negative number ({n}) not allowed: {text}")
    return n


def _int_or_name(text: str, b: Bounds) -> int:
    return b.names[text.lower()] if text.lower() in b.names else _int(text)


def _range(expr: str, b: Bounds) -> Field:
    """number | number "-" number [ "/" number ] | "*" [ "/" number ]"""
    range_step = expr.split("/")
    low_high = range_step[0].split("-")
    star = low_high[0] in ("*", "?")
    if star:
        start, end = b.low, b.high
    else:
        start = _int_or_name(low_high[0], b)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _int_or_name(low_high[1], b)
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_step) == 1:
        step = 1
    elif len(range_step) == 2:
        step = _int(range_step[1])
        if step <= 0:
            raise CronError(f"step of range should be a positive number: {expr}")
        if len(low_high) == 1:      # "N/step" means "N-max/step"
            end = b.high
        star = star and step == 1
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < b.low:
        raise CronError(f"beginning of range ({start}) below minimum ({b.low}): {expr}")
    if end > b.high:
        raise CronError(f"end of range ({end}) above maximum ({b.high}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    return Field(frozenset(range(start, end + 1, step)), star)


def _field(text: str, b: Bounds) -> Field:
    """A comma-separated list of ranges."""
    parts = [_range(expr, b) for expr in text.split(",") if expr]
    return Field(frozenset().union(*(p.values for p in parts)), any(p.star for p in parts))


def parse_go_duration(text: str) -> float:
    """time.ParseDuration, in seconds (for @every)."""
    body = text.lstrip("+-")
    sign = -1.0 if text.startswith("-") else 1.0
    if body == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _GO_DURATION.finditer(body):
        if m.start() != pos or m.group(1) in ("", "."):
            break
        total += float(m.group(1)) * _GO_UNITS[m.group(2)]
        pos = m.end()
    if not body or pos != len(body):
        raise CronError(f'time: {"missing unit in" if body and body[-1].isdigit() else "invalid"} duration "{text}"')
    return sign * total


@dataclass(frozen=True)
class Schedule:
    minute: Field | None = None
    hour: Field | None = None
    dom: Field | None = None
    month: Field | None = None
    dow: Field | None = None
    every: float = 0.0          # @every: a constant delay, rounded down to whole seconds (minimum 1 s)
    tz: tzinfo | None = None    # from a TZ=/CRON_TZ= prefix

    def _day_matches(self, d: datetime) -> bool:
        """Day-of-month and weekday: both must match when either is a star, else either may."""
        assert self.dom is not None and self.dow is not None
        dom_ok, dow_ok = d.day in self.dom.values, (d.weekday() + 1) % 7 in self.dow.values
        if self.dom.star or self.dow.star:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    @staticmethod
    def _instant(wall: datetime, loc: tzinfo, after: datetime) -> datetime | None:
        """The wall-clock time as an instant after `after`: None inside a DST gap (the time does
        not exist that day); of an ambiguous time, the first occurrence still to come."""
        for fold in (0, 1):
            aware = wall.replace(tzinfo=loc, fold=fold)
            if aware.astimezone(timezone.utc).astimezone(loc).replace(tzinfo=None) != wall:
                return None
            if aware.astimezone(timezone.utc) > after.astimezone(timezone.utc):   # same-zone compares ignore fold
                return aware
        return None

    def next(self, after: datetime, zone: tzinfo = timezone.utc) -> datetime | None:
        """The first activation strictly after `after` (aware), in `zone` unless the spec named one;
        None when nothing matches within five years (robfig's zero time)."""
        if self.every:
            return after.replace(microsecond=0) + timedelta(seconds=self.every)
        assert self.minute and self.hour and self.month
        loc = self.tz or zone
        # the next whole minute in absolute time, then a walk over wall-clock days and times; a local
        # time that does not exist (DST gap) is skipped
        t = (after.astimezone(timezone.utc).replace(second=0, microsecond=0) + timedelta(minutes=1)).astimezone(loc)
        day = t.replace(hour=0, minute=0, tzinfo=None)
        limit = day + timedelta(days=366 * SEARCH_YEARS)
        start_wall = t.replace(tzinfo=None)
        hours, minutes = sorted(self.hour.values), sorted(self.minute.values)
        while day <= limit:
            if day.month not in self.month.values:
                day = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
                continue
            if self._day_matches(day):
                first_day = day.date() == start_wall.date()
                for h in hours[bisect_left(hours, start_wall.hour) if first_day else 0:]:
                    same_hour = first_day and h == start_wall.hour
                    for m in minutes[bisect_left(minutes, start_wall.minute) if same_hour else 0:]:
                        found = self._instant(day.replace(hour=h, minute=m), loc, after)
                        if found is not None:
                            return found
            day += timedelta(days=1)
        return None


def parse(spec: str) -> Schedule:
    """cron.ParseStandard."""
    if not spec:
        raise CronError("empty spec string")
    tz: tzinfo | None = None
    if spec.startswith(("TZ=", "CRON_TZ=")):
        i = spec.find(" ")
        if i == -1:
            raise CronError(f"invalid location descriptior: {spec}")   # sic, robfig's spelling
        name = spec[spec.index("=") + 1:i]
        try:
            tz = load_location(name)
        except CronError as e:
            raise CronError(f"provided bad location {name}: {e}") from None
        spec = spec[i:].strip()
    if spec.startswith("@"):
        if spec in DESCRIPTORS:
            return _fields(DESCRIPTORS[spec].split(), tz)
        if spec.startswith("@every "):
            try:
                seconds = parse_go_duration(spec[len("@every "):])
            except CronError as e:
                raise CronError(f"failed to parse duration {spec}: {e}") from None
            return Schedule(every=max(1.0, float(int(seconds))), tz=tz)
        raise CronError(f"unrecognized descriptor: {spec}")
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    return _fields(fields, tz)


def _fields(fields: list[str], tz: tzinfo | None) -> Schedule:
    return Schedule(_field(fields[0], MINUTES), _field(fields[1], HOURS), _field(fields[2], DOM),
                    _field(fields[3], MONTHS), _field(fields[4], DOW), tz=tz)


def load_location(name: str) -> tzinfo:
    """time.LoadLocation: "" and "UTC" are UTC; otherwise an IANA name (error text as Go's)."""
    if name in ("", "UTC"):
        return timezone.utc
    if name == "Local":
        return timezone.utc        # the controller-manager's local zone: these processes run in UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {name}") from None
