"""The cron parser (robfig/cron v3's ParseStandard) and the CronJob controller's schedule arithmetic,
at fixed times."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from controllers.cronjob import earliest_time, job_name, most_recent
from kubeling.api.cron import CronError, parse

UTC = timezone.utc
T0 = datetime(2026, 3, 7, 23, 58, 30, tzinfo=UTC)     # a Saturday


def nexts(spec: str, after: datetime, n: int, zone=UTC) -> list[str]:
    sched, out = parse(spec), []
    for _ in range(n):
        after = sched.next(after, zone)
        out.append(after.isoformat())
    return out


@pytest.mark.parametrize("spec,expected", [
    ("* * * * *", ["2026-03-07T23:59:00+00:00", "2026-03-08T00:00:00+00:00", "2026-03-08T00:01:00+00:00"]),
    ("*/20 * * * *", ["2026-03-08T00:00:00+00:00", "2026-03-08T00:20:00+00:00", "2026-03-08T00:40:00+00:00"]),
    ("5-10/5 1 * * *", ["2026-03-08T01:05:00+00:00", "2026-03-08T01:10:00+00:00", "2026-03-09T01:05:00+00:00"]),
    ("0 9 * * mon-fri", ["2026-03-09T09:00:00+00:00", "2026-03-10T09:00:00+00:00", "2026-03-11T09:00:00+00:00"]),
    ("0 0 1 jan,jul *", ["2026-07-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00", "2027-07-01T00:00:00+00:00"]),
    # day of month and weekday both restricted: either matches (the 13th, or any Friday)
    ("0 0 13 * 5", ["2026-03-13T00:00:00+00:00", "2026-03-20T00:00:00+00:00", "2026-03-27T00:00:00+00:00"]),
    ("@hourly", ["2026-03-08T00:00:00+00:00", "2026-03-08T01:00:00+00:00", "2026-03-08T02:00:00+00:00"]),
    ("@weekly", ["2026-03-08T00:00:00+00:00", "2026-03-15T00:00:00+00:00", "2026-03-22T00:00:00+00:00"]),
    ("@monthly", ["2026-04-01T00:00:00+00:00", "2026-05-01T00:00:00+00:00", "2026-06-01T00:00:00+00:00"]),
    ("@every 90s", ["2026-03-08T00:00:00+00:00", "2026-03-08T00:01:30+00:00", "2026-03-08T00:03:00+00:00"]),
])
def test_next_activations(spec, expected):
    assert nexts(spec, T0, 3) == expected


def test_time_zone_and_daylight_saving():
    ny = ZoneInfo("America/New_York")
    # 02:30 does not exist on 2026-03-08 in New York: that day is skipped
    assert nexts("30 2 * * *", T0, 2, ny) == ["2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"]
    assert nexts("0 9 * * *", T0, 1, ny) == ["2026-03-08T09:00:00-04:00"]
    # a TZ= prefix in the schedule wins over the zone passed in
    assert nexts("TZ=Asia/Tokyo 0 9 * * *", T0, 1, ny) == ["2026-03-08T09:00:00+09:00"]


def test_fall_back_hour_runs_minute_by_minute_through_both_occurrences():
    ny = ZoneInfo("America/New_York")
    last_edt = datetime(2026, 11, 1, 5, 59, tzinfo=UTC)          # 01:59 EDT, then 01:00 EST again
    assert nexts("* * * * *", last_edt, 2, ny) == ["2026-11-01T01:00:00-05:00", "2026-11-01T01:01:00-05:00"]
    assert nexts("30 1 * * *", datetime(2026, 10, 31, 12, 0, tzinfo=UTC), 2, ny) == [
        "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]


def test_next_is_fast_late_in_the_day():
    late = datetime(2026, 1, 1, 23, 58, tzinfo=UTC)
    sched = parse("* * * * *")
    start = time.monotonic()
    for _ in range(2000):
        sched.next(late)
    assert time.monotonic() - start < 2


def test_impossible_schedule_has_no_next_time():
    assert parse("0 0 30 2 *").next(T0) is None


@pytest.mark.parametrize("spec,message", [
    ("bogus", "expected exactly 5 fields, found 1: [bogus]"),
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("60 * * * *", "end of range (60) above maximum (59): 60"),
    ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
    ("1/2/3 * * * *", "too many slashes: 1/2/3"),
    ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
    ("* * * foo *", 'failed to parse int from foo: strconv.Atoi: parsing "foo": invalid syntax'),
    ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("@every 5", 'failed to parse duration @every 5: time: missing unit in duration "5"'),
    ("TZ=Nowhere/City * * * * *", "provided bad location Nowhere/City: unknown time zone Nowhere/City"),
    ("", "empty spec string"),
])
def test_parse_errors_read_like_robfig(spec, message):
    with pytest.raises(CronError) as e:
        parse(spec)
    assert str(e.value) == message


def cronjob(created: datetime, last: datetime | None = None, deadline: int | None = None) -> dict:
    return {"metadata": {"name": "c", "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "spec": {"schedule": "* * * * *", **({"startingDeadlineSeconds": deadline} if deadline is not None else {})},
            "status": {"lastScheduleTime": last.strftime("%Y-%m-%dT%H:%M:%SZ")} if last else {}}


def test_most_recent_missed_time_and_count():
    sched = parse("*/10 * * * *")
    created = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    now = datetime(2026, 1, 1, 0, 35, tzinfo=UTC)
    assert most_recent(sched, created, now, UTC) == (datetime(2026, 1, 1, 0, 30, tzinfo=UTC), 3)
    assert most_recent(sched, created, datetime(2026, 1, 1, 0, 5, tzinfo=UTC), UTC) == (None, 0)
    # a day of outage on a per-minute schedule: well over the 100 that upstream reports
    t, missed = most_recent(parse("* * * * *"), created, created + timedelta(days=1), UTC)
    assert t == created + timedelta(days=1) and missed == 1440


def test_starting_deadline_bounds_the_search():
    now = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
    created = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert earliest_time(cronjob(created), now, True) == created
    assert earliest_time(cronjob(created, deadline=200), now, True) == now - timedelta(seconds=200)
    assert earliest_time(cronjob(created, deadline=200), now, False) == created
    last = datetime(2026, 1, 1, 11, 59, tzinfo=UTC)
    assert earliest_time(cronjob(created, last, deadline=200), now, True) == last


def test_job_name_is_minutes_since_epoch():
    assert job_name("hello", datetime(2026, 1, 1, 0, 1, tzinfo=UTC)) == "hello-29453761"
