"""The CronJob controller (upstream's cronjob_controllerv2): on each sync it reconciles
status.active with the Jobs the CronJob owns, starts the Job for the most recent missed
schedule (within startingDeadlineSeconds, honouring concurrencyPolicy and suspend), prunes
finished Jobs beyond the history limits, and re-queues itself for the next scheduled time."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from email.utils import format_datetime

import orjson

from kubeling.api.cron import CronError, Schedule, load_location, parse
from kubeling.api.gofmt import quote
from kubeling.api.resources import lookup
from kubeling.client import ApiError

from .base import Controller, controller_of, namespace_terminating
from .workloads import JOBS, _owner_ref

CRONJOBS = lookup("batch", "v1", "cronjobs")
SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
NEXT_SCHEDULE_DELTA = 0.1        # upstream's nextScheduleDelta: wake just after the scheduled time
MANY_MISSED = 100                # more missed start times than this is reported (TooManyMissedTimes)
_ITERATION_CAP = 1_000           # beyond this many candidates, count missed times arithmetically


def _rfc3339(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def job_name(cronjob: str, scheduled: datetime) -> str:
    """getJobName: <cronjob>-<scheduled time in minutes since the epoch>."""
    return f"{cronjob}-{int(scheduled.timestamp()) // 60}"


def most_recent(sched: Schedule, earliest: datetime, now: datetime, zone: tzinfo) -> tuple[datetime | None, int]:
    """mostRecentScheduleTime: the latest scheduled time in (earliest, now] and how many there were."""
    t = sched.next(earliest, zone)
    if t is None or t > now:
        return None, 0
    latest, count = t, 1
    while count < _ITERATION_CAP:
        n = sched.next(latest, zone)
        if n is None or n > now:
            return latest, count
        latest, count = n, count + 1
    # an implausibly long outage: extrapolate from the interval between the last two candidates
    step = max(1.0, (sched.next(latest, zone) - latest).total_seconds())
    extra = int((now - latest).total_seconds() // step)
    return latest + timedelta(seconds=extra * step), count + extra


def earliest_time(cj: dict, now: datetime, with_deadline: bool) -> datetime:
    """Where to look for missed times from: the last schedule (or creation), but no further back
    than startingDeadlineSeconds."""
    status, spec = cj.get("status") or {}, cj.get("spec") or {}
    earliest = _parse_time(status.get("lastScheduleTime")) or _parse_time(cj["metadata"]["creationTimestamp"])
    assert earliest is not None
    deadline = spec.get("startingDeadlineSeconds")
    if with_deadline and deadline is not None:
        earliest = max(earliest, now - timedelta(seconds=deadline))
    return earliest


def _finished(job: dict) -> str | None:
    """The type of the Job's finishing condition (Complete or Failed), if it has one."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return c["type"]
    return None


def _job_ref(job: dict) -> dict:
    m = job["metadata"]
    return {"kind": "Job", "namespace": m["namespace"], "name": m["name"], "uid": m["uid"],
            "apiVersion": "batch/v1", "resourceVersion": m.get("resourceVersion", "")}


class CronJobController(Controller):
    name = "cronjob"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.cronjobs = self.factory.get(CRONJOBS)
        self.jobs = self.factory.get(JOBS)
        self.jobs.add_indexer("cronjob", lambda j: [r["uid"] for r in [controller_of(j)]
                                                    if r is not None and r.get("kind") == "CronJob"])
        self.cronjobs.add_handler(*self.enqueue_handlers())
        self.jobs.add_handler(self.on_job, lambda old, new: self.on_job(new), self.on_job)

    def on_job(self, job: dict) -> None:
        ref = controller_of(job)
        if ref is not None and ref.get("kind") == "CronJob":
            self.queue.add(f"{job['metadata']['namespace']}/{ref['name']}")

    async def sync(self, key: str) -> None:
        cj = self.cronjobs.get(key)
        if cj is None:
            return
        cj = orjson.loads(orjson.dumps(cj))
        status = cj.setdefault("status", {})
        before = orjson.dumps(status, option=orjson.OPT_SORT_KEYS)
        jobs = self.jobs.by_index("cronjob", cj["metadata"]["uid"])
        await self._reconcile_active(cj, jobs)
        requeue = None
        if not cj["metadata"].get("deletionTimestamp"):
            requeue = await self._schedule(cj)
        await self._cleanup(cj, jobs)
        if orjson.dumps(cj["status"], option=orjson.OPT_SORT_KEYS) != before:
            try:
                await self.client.update(CRONJOBS, cj, cj["metadata"]["namespace"], "status")
            except ApiError as e:
                if not (e.not_found or e.conflict):
                    raise
                self.queue.add_after(key, 0.1)     # a newer version is on its way; look again
        if requeue is not None:
            self.queue.add_after(key, requeue)

    async def _reconcile_active(self, cj: dict, jobs: list[dict]) -> None:
        """status.active loses the Jobs that finished (reported once, SawCompletedJob) or went
        missing; a Complete one moves lastSuccessfulTime on."""
        status = cj["status"]
        active = {r.get("uid"): r for r in status.get("active") or []}
        owned = {j["metadata"]["uid"] for j in jobs}
        for j in jobs:
            uid, done = j["metadata"]["uid"], _finished(j)
            if uid not in active and not done:
                if uid in await self._stored_active(cj):   # our own, seen before our status write
                    active[uid] = _job_ref(j)
                    continue
                # not adopted (upstream neither): concurrency rules cannot cover jobs users create
                self.recorder.event(cj, "Warning", "UnexpectedJob",
                                    f"Saw a job that the controller did not create or forgot: {j['metadata']['name']}")
            elif uid in active and done:
                del active[uid]
                self.recorder.event(cj, "Normal", "SawCompletedJob",
                                    f"Saw completed job: {j['metadata']['name']}, condition: {done}")
            if done == "Complete":
                completed = (j.get("status") or {}).get("completionTime")
                last = status.get("lastSuccessfulTime")
                if completed and (last is None or _parse_time(completed) > _parse_time(last)):
                    status["lastSuccessfulTime"] = completed
        for uid, ref in list(active.items()):
            if uid not in owned and self.jobs.get(f"{ref.get('namespace')}/{ref.get('name')}") is None:
                del active[uid]
                self.recorder.event(cj, "Normal", "MissingJob", f"Active job went missing: {ref.get('name')}")
        if active:
            status["active"] = sorted(active.values(), key=lambda r: r.get("name", ""))
        else:
            status.pop("active", None)

    async def _stored_active(self, cj: dict) -> set[str]:
        """The uids in the stored CronJob's status.active (the cache may be behind our own write)."""
        try:
            fresh = await self.client.get(CRONJOBS, cj["metadata"]["name"], cj["metadata"]["namespace"])
        except ApiError as e:
            if e.not_found:
                return set()
            raise
        return {r.get("uid") for r in (fresh.get("status") or {}).get("active") or []}

    async def _schedule(self, cj: dict) -> float | None:
        """Start the Job due now, if any; the seconds until the next scheduled time (None: never)."""
        spec, status = cj.get("spec") or {}, cj["status"]
        zone: tzinfo = timezone.utc
        if spec.get("timeZone") is not None:
            try:
                zone = load_location(spec["timeZone"])
            except CronError as e:
                self.recorder.event(cj, "Warning", "UnknownTimeZone", f"invalid timeZone: {quote(spec['timeZone'])}: {e}")
                return None
        if spec.get("suspend"):
            return None
        try:
            sched = parse(spec.get("schedule", ""))
        except CronError as e:
            self.recorder.event(cj, "Warning", "UnparseableSchedule",
                                f"unparseable schedule: {quote(spec.get('schedule', ''))} : {e}")
            return None
        now = datetime.now(timezone.utc)
        scheduled, missed = most_recent(sched, earliest_time(cj, now, True), now, zone)
        if scheduled is None:
            return self._until_next(cj, sched, now, zone)
        if missed > MANY_MISSED:
            self.recorder.event(cj, "Warning", "TooManyMissedTimes", "too many missed start times. Set or decrease "
                                ".spec.startingDeadlineSeconds or check clock skew")
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and scheduled + timedelta(seconds=deadline) < now:
            self.recorder.event(cj, "Warning", "MissSchedule", "Missed scheduled time to start a job: "
                                + format_datetime(scheduled.astimezone(timezone.utc)))
            return self._until_next(cj, sched, now, zone)
        name = job_name(cj["metadata"]["name"], scheduled)
        if any(r.get("name") == name for r in status.get("active") or []) or \
                status.get("lastScheduleTime") == _rfc3339(scheduled):
            return self._until_next(cj, sched, now, zone)
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Forbid" and status.get("active"):
            self.recorder.event(cj, "Normal", "JobAlreadyActive",
                                "Not starting job because prior execution is running and concurrency policy is Forbid")
            return self._until_next(cj, sched, now, zone)
        if policy == "Replace":
            for ref in list(status.get("active") or []):
                await self._delete_job(cj, ref["name"])
                status["active"] = [r for r in status["active"] if r.get("uid") != ref.get("uid")]
            if not status.get("active"):
                status.pop("active", None)
        try:
            job = await self.client.create(JOBS, self._job(cj, scheduled, zone), cj["metadata"]["namespace"])
        except ApiError as e:
            if namespace_terminating(e):
                return None
            if not e.already_exists:
                self.recorder.event(cj, "Warning", "FailedCreate", f"Error creating job: {e}")
                raise
            # ours when an earlier sync created it and then lost its status write: record it now
            job = await self.client.get(JOBS, name, cj["metadata"]["namespace"])
            if (controller_of(job) or {}).get("uid") != cj["metadata"]["uid"]:
                return self._until_next(cj, sched, now, zone)
        else:
            self.recorder.event(cj, "Normal", "SuccessfulCreate", f"Created job {job['metadata']['name']}")
        if _finished(job) is None:
            active = [r for r in status.get("active") or [] if r.get("uid") != job["metadata"]["uid"]]
            status["active"] = sorted([*active, _job_ref(job)], key=lambda r: r.get("name", ""))
        status["lastScheduleTime"] = _rfc3339(scheduled)
        return self._until_next(cj, sched, now, zone)

    @staticmethod
    def _until_next(cj: dict, sched: Schedule, now: datetime, zone: tzinfo) -> float | None:
        """nextScheduleTimeDuration: from the most recent scheduled time (or the earliest one
        considered) to the one after it, plus a small delta."""
        earliest = earliest_time(cj, now, False)
        recent, _ = most_recent(sched, earliest, now, zone)
        nxt = sched.next(recent or earliest, zone)
        if nxt is None:
            return None
        return max(0.0, (nxt - now).total_seconds()) + NEXT_SCHEDULE_DELTA

    @staticmethod
    def _job(cj: dict, scheduled: datetime, zone: tzinfo) -> dict:
        """getJobFromTemplate2: the template's Job, named for the scheduled time, owned by the CronJob."""
        tpl = orjson.loads(orjson.dumps((cj.get("spec") or {}).get("jobTemplate") or {}))
        meta = tpl.get("metadata") or {}
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
            "name": job_name(cj["metadata"]["name"], scheduled), "namespace": cj["metadata"]["namespace"],
            "labels": meta.get("labels") or {},
            "annotations": {**(meta.get("annotations") or {}),
                            SCHEDULED_TIMESTAMP: scheduled.astimezone(zone).isoformat().replace("+00:00", "Z")},
            "ownerReferences": [_owner_ref(cj, "CronJob", "batch/v1")]},
            "spec": tpl.get("spec") or {}}

    async def _delete_job(self, cj: dict, name: str) -> bool:
        try:
            await self.client.delete(JOBS, name, cj["metadata"]["namespace"], propagationPolicy="Background")
        except ApiError as e:
            if not e.not_found:
                self.recorder.event(cj, "Warning", "FailedDelete", f"Deleted job: {e}")
                raise
            return False
        self.recorder.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {name}")
        return True

    async def _cleanup(self, cj: dict, jobs: list[dict]) -> None:
        """cleanupFinishedJobs: keep the newest successfulJobsHistoryLimit Complete and
        failedJobsHistoryLimit Failed Jobs (by start time), delete the older ones."""
        spec = cj.get("spec") or {}
        for kind, limit in (("Complete", spec.get("successfulJobsHistoryLimit")),
                            ("Failed", spec.get("failedJobsHistoryLimit"))):
            if limit is None:
                continue
            done = [j for j in jobs if _finished(j) == kind and not j["metadata"].get("deletionTimestamp")]
            done.sort(key=lambda j: ((j.get("status") or {}).get("startTime") is None,
                                     (j.get("status") or {}).get("startTime") or "", j["metadata"]["name"]))
            for j in done[:max(0, len(done) - limit)]:
                if await self._delete_job(cj, j["metadata"]["name"]):
                    uid = j["metadata"]["uid"]
                    active = [r for r in cj["status"].get("active") or [] if r.get("uid") != uid]
                    if active:
                        cj["status"]["active"] = active
                    else:
                        cj["status"].pop("active", None)
