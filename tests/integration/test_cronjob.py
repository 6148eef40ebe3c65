"""The CronJob controller against a real apiserver: a `* * * * *` CronJob starts its Job at the next
minute; concurrency policies, suspend, history limits and completed-Job bookkeeping are driven
through status (a missed schedule written into status.lastScheduleTime is due at once), so no test
waits for the clock beyond the one real minute. No Job controller runs: Jobs finish by hand."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.support.clusters import free_port, wait_for
from tests.support.control_plane import Component

CJ = "/apis/batch/v1/namespaces/{ns}/cronjobs"
JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"


@pytest.fixture(scope="module")
def controllers(control_plane, tmp_path_factory):
    c = Component(tmp_path_factory.mktemp("cm"), "controllers",
                  ["--kubeconfig", str(control_plane.kubeconfig), "--port", str(free_port()),
                   "--controllers", "cronjob"]).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def every_minute(control_plane, controllers):
    """Created first, checked last: the module's other tests run while its minute passes."""
    ns = "cron-minute"
    assert control_plane.http("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})[0] == 201
    control_plane.kubectl("-n", ns, "create", "cronjob", "tick", "--image=busybox", "--schedule=* * * * *",
                          "--", "date")
    return ns, time.time()


def ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def cronjob(name: str, **spec) -> dict:
    return {"metadata": {"name": name}, "spec": {
        "schedule": "* * * * *", "suspend": True, **spec, "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}}


def get(api, path: str) -> dict:
    code, body, _ = api.http("GET", path)
    assert code == 200, body
    return body


def jobs(api, ns: str) -> list[dict]:
    return get(api, JOBS.format(ns=ns))["items"]


def events(api, ns: str, reason: str) -> list[str]:
    return [e["message"] for e in get(api, f"/api/v1/namespaces/{ns}/events")["items"] if e["reason"] == reason]


def owned_job(api, ns: str, cj: dict, name: str, finished: str | None = None, started: datetime | None = None) -> dict:
    """A Job as the controller would have made it; finished: its terminal condition (Complete/Failed)."""
    body = {"metadata": {"name": name, "ownerReferences": [{
        "apiVersion": "batch/v1", "kind": "CronJob", "name": cj["metadata"]["name"], "uid": cj["metadata"]["uid"],
        "controller": True, "blockOwnerDeletion": True}]}, "spec": cj["spec"]["jobTemplate"]["spec"]}
    code, job, _ = api.http("POST", JOBS.format(ns=ns), body)
    assert code == 201, job
    if finished:
        start = started or datetime.now(timezone.utc) - timedelta(minutes=5)
        interim = {"Complete": "SuccessCriteriaMet", "Failed": "FailureTarget"}[finished]
        conds = [{"type": t, "status": "True", "reason": "Done", "message": "by hand", "lastProbeTime": ts(start),
                  "lastTransitionTime": ts(start + timedelta(seconds=30))} for t in (interim, finished)]
        status = {"startTime": ts(start), "conditions": conds, "succeeded" if finished == "Complete" else "failed": 1}
        if finished == "Complete":
            status["completionTime"] = ts(start + timedelta(seconds=30))
        code, job, _ = api.http("PUT", f"{JOBS.format(ns=ns)}/{name}/status", {**job, "status": status})
        assert code == 200, job
    return job


def write_status(api, ns: str, name: str, **status) -> dict:
    cur = get(api, f"{CJ.format(ns=ns)}/{name}")
    code, body, _ = api.http("PUT", f"{CJ.format(ns=ns)}/{name}/status", {**cur, "status": {**cur["status"], **status}})
    assert code == 200, body
    return body


def resume(api, ns: str, name: str) -> None:
    code, body, _ = api.http("PATCH", f"{CJ.format(ns=ns)}/{name}", {"spec": {"suspend": False}},
                             content_type="application/merge-patch+json")
    assert code == 200, body


def make(api, ns: str, name: str, **spec) -> dict:
    code, body, _ = api.http("POST", CJ.format(ns=ns), cronjob(name, **spec))
    assert code == 201, body
    return body


def test_get_cronjob_columns(control_plane, controllers, every_minute, ns):
    make(control_plane, ns, "nightly", schedule="0 3 * * *", timeZone="Europe/Berlin")
    out = control_plane.kubectl("-n", ns, "get", "cronjobs", "-o", "wide").stdout.splitlines()
    assert out[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE",
                              "CONTAINERS", "IMAGES", "SELECTOR"]
    assert out[1].split()[:7] == ["nightly", "0", "3", "*", "*", "*", "Europe/Berlin"]
    assert out[1].split()[7:10] == ["True", "0", "<none>"]
    bad = control_plane.kubectl("-n", ns, "create", "cronjob", "x", "--image=busybox", "--schedule=bogus", check=False)
    assert bad.returncode != 0
    assert 'spec.schedule: Invalid value: "bogus": expected exactly 5 fields, found 1: [bogus]' in bad.stderr


@pytest.mark.parametrize("policy", ["Allow", "Forbid", "Replace"])
def test_missed_schedule_and_concurrency_policy(control_plane, controllers, every_minute, ns, policy):
    api = control_plane
    cj = make(api, ns, "work", concurrencyPolicy=policy)
    running = owned_job(api, ns, cj, "work-running")
    missed = datetime.now(timezone.utc).replace(second=0) - timedelta(minutes=3)
    write_status(api, ns, "work", lastScheduleTime=ts(missed), active=[{
        "kind": "Job", "namespace": ns, "name": "work-running", "uid": running["metadata"]["uid"],
        "apiVersion": "batch/v1"}])
    resume(api, ns, "work")

    def status() -> dict:
        return get(api, f"{CJ.format(ns=ns)}/work").get("status") or {}
    if policy == "Forbid":
        wait_for(lambda: events(api, ns, "JobAlreadyActive"), 20, "JobAlreadyActive")
        assert events(api, ns, "JobAlreadyActive") == [
            "Not starting job because prior execution is running and concurrency policy is Forbid"]
        assert [j["metadata"]["name"] for j in jobs(api, ns)] == ["work-running"]
        assert [r["name"] for r in status()["active"]] == ["work-running"]
        return
    st = wait_for(lambda: (s := status()).get("lastScheduleTime") != ts(missed) and s, 20, "a Job started")
    scheduled = datetime.fromisoformat(st["lastScheduleTime"].replace("Z", "+00:00"))
    assert scheduled > missed and scheduled <= datetime.now(timezone.utc)
    name = f"work-{int(scheduled.timestamp()) // 60}"
    job = get(api, f"{JOBS.format(ns=ns)}/{name}")
    ref = job["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == ("CronJob", "work", cj["metadata"]["uid"], True)
    assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == st["lastScheduleTime"]
    assert f"Created job {name}" in events(api, ns, "SuccessfulCreate")
    if policy == "Allow":
        assert sorted(r["name"] for r in st["active"]) == sorted([name, "work-running"])
    else:
        assert [r["name"] for r in st["active"]] == [name]
        assert "Deleted job work-running" in events(api, ns, "SuccessfulDelete")
        wait_for(lambda: api.http("GET", f"{JOBS.format(ns=ns)}/work-running")[0] == 404, 20, "the old Job deleted")


@pytest.mark.parametrize("deadline", [None, 200])
def test_long_outage_reports_too_many_missed_times(control_plane, controllers, every_minute, ns, deadline):
    """Three hours without a run: 180 missed times are reported, unless startingDeadlineSeconds
    limits the look-back; either way only the most recent one runs."""
    api = control_plane
    make(api, ns, "late", **({"startingDeadlineSeconds": deadline} if deadline else {}))
    write_status(api, ns, "late", lastScheduleTime=ts(datetime.now(timezone.utc) - timedelta(hours=3)))
    resume(api, ns, "late")
    wait_for(lambda: jobs(api, ns), 20, "the most recent Job")
    assert len(jobs(api, ns)) == 1
    missed = events(api, ns, "TooManyMissedTimes")
    if deadline is None:
        assert missed == ["too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check "
                          "clock skew"]
    else:
        assert missed == []


def test_suspended_cronjob_starts_nothing(control_plane, controllers, every_minute, ns):
    api = control_plane
    make(api, ns, "paused")
    write_status(api, ns, "paused", lastScheduleTime=ts(datetime.now(timezone.utc) - timedelta(minutes=5)))
    make(api, ns, "live", suspend=False)
    write_status(api, ns, "live", lastScheduleTime=ts(datetime.now(timezone.utc) - timedelta(minutes=5)))
    wait_for(lambda: any(j["metadata"]["name"].startswith("live-") for j in jobs(api, ns)), 20, "the live Job")
    assert not any(j["metadata"]["name"].startswith("paused-") for j in jobs(api, ns))
    assert control_plane.kubectl("-n", ns, "get", "cronjob", "paused").stdout.splitlines()[1].split()[7] == "True"


def test_completed_jobs_are_recorded_and_history_limited(control_plane, controllers, every_minute, ns):
    api = control_plane
    cj = make(api, ns, "hist", successfulJobsHistoryLimit=2, failedJobsHistoryLimit=1)
    base = datetime.now(timezone.utc) - timedelta(hours=1)
    active = owned_job(api, ns, cj, "hist-active")
    write_status(api, ns, "hist", active=[{"kind": "Job", "namespace": ns, "name": "hist-active",
                                           "uid": active["metadata"]["uid"], "apiVersion": "batch/v1"}])
    for i in range(4):
        owned_job(api, ns, cj, f"hist-ok-{i}", "Complete", base + timedelta(minutes=i))
    for i in range(2):
        owned_job(api, ns, cj, f"hist-bad-{i}", "Failed", base + timedelta(minutes=i))
    want = ["hist-active", "hist-bad-1", "hist-ok-2", "hist-ok-3"]
    wait_for(lambda: sorted(j["metadata"]["name"] for j in jobs(api, ns)
                            if not j["metadata"].get("deletionTimestamp")) == want, 20, f"only {want} left")
    assert sorted(events(api, ns, "SuccessfulDelete")) == ["Deleted job hist-bad-0", "Deleted job hist-ok-0",
                                                           "Deleted job hist-ok-1"]
    # the active Job finishes: it leaves status.active and moves lastSuccessfulTime on
    done = datetime.now(timezone.utc).replace(microsecond=0)
    job = get(api, f"{JOBS.format(ns=ns)}/hist-active")
    conds = [{"type": t, "status": "True", "reason": "Done", "message": "", "lastProbeTime": ts(done),
              "lastTransitionTime": ts(done)} for t in ("SuccessCriteriaMet", "Complete")]
    code, body, _ = api.http("PUT", f"{JOBS.format(ns=ns)}/hist-active/status", {**job, "status": {
        "startTime": ts(done - timedelta(seconds=5)), "completionTime": ts(done), "succeeded": 1, "conditions": conds}})
    assert code == 200, body
    st = wait_for(lambda: (s := get(api, f"{CJ.format(ns=ns)}/hist")["status"]).get("lastSuccessfulTime") == ts(done)
                  and s, 20, "lastSuccessfulTime")
    assert not st.get("active")
    assert events(api, ns, "SawCompletedJob") == ["Saw completed job: hist-active, condition: Complete"]
    # four Complete Jobs now: the oldest of them goes
    wait_for(lambda: "hist-ok-2" not in {j["metadata"]["name"] for j in jobs(api, ns)
                                         if not j["metadata"].get("deletionTimestamp")}, 20, "hist-ok-2 pruned")


def test_create_job_from_cronjob(control_plane, controllers, every_minute, ns):
    make(control_plane, ns, "source")
    control_plane.kubectl("-n", ns, "create", "job", "manual", "--from=cronjob/source")
    job = get(control_plane, f"{JOBS.format(ns=ns)}/manual")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"


def test_every_minute_starts_a_job(control_plane, every_minute):
    """Last: by now most of the minute has passed. The first Job is the one for the first minute
    after the CronJob's creation."""
    ns, created = every_minute
    deadline = 62 - (time.time() - created) + 10
    job = wait_for(lambda: next(iter(jobs(control_plane, ns)), None), max(deadline, 5), "the minute's Job",
                   interval=0.5)
    cj = get(control_plane, f"{CJ.format(ns=ns)}/tick")
    born = datetime.fromisoformat(cj["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    first_minute = int(born.timestamp()) // 60 + 1
    assert job["metadata"]["name"] == f"tick-{first_minute}"
    assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == ts(
        datetime.fromtimestamp(first_minute * 60, timezone.utc))
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["date"]
    assert job["metadata"]["name"] in {r["name"] for r in cj["status"]["active"]}
    line = control_plane.kubectl("-n", ns, "get", "cronjob", "tick").stdout.splitlines()[1].split()
    assert line[0] == "tick" and int(line[-3]) == len(cj["status"]["active"])   # ACTIVE, LAST SCHEDULE, AGE
