"""CronJob and PodDisruptionBudget (and the Job fields for indexed completion and podFailurePolicy)
as the apiserver defaults, validates and prints them, with upstream's messages and columns."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from apiserver.api.defaults import apply_defaults
from apiserver.api.tables import column_definitions, row_cells
from apiserver.api.validation import validate
from kubeling.api.resources import lookup

CRONJOBS, PDBS, JOBS = (lookup("batch", "v1", "cronjobs"), lookup("policy", "v1", "poddisruptionbudgets"),
                        lookup("batch", "v1", "jobs"))
NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def cronjob(name: str = "hello", **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": "default"},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}, **spec}}


def messages(resource, obj, old=None) -> list[str]:
    return [f"{c.field}: {c.message}" for c in validate(resource, obj, old)]


def test_cronjob_defaults_leave_the_job_spec_to_the_job():
    cj = cronjob()
    apply_defaults(CRONJOBS, cj)
    spec = cj["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"], spec["successfulJobsHistoryLimit"],
            spec["failedJobsHistoryLimit"]) == ("Allow", False, 3, 1)
    job_spec = spec["jobTemplate"]["spec"]
    assert "backoffLimit" not in job_spec and "completions" not in job_spec
    pod = job_spec["template"]["spec"]
    assert pod["dnsPolicy"] == "ClusterFirst" and pod["containers"][0]["imagePullPolicy"] == "Always"
    assert messages(CRONJOBS, cj) == []


def test_cronjob_validation_messages():
    def check(obj, old=None):
        apply_defaults(CRONJOBS, obj)
        return messages(CRONJOBS, obj, old)
    assert check(cronjob(schedule="bogus")) == [
        'spec.schedule: Invalid value: "bogus": expected exactly 5 fields, found 1: [bogus]']
    assert check(cronjob(schedule="")) == ["spec.schedule: Required value"]
    assert check(cronjob(schedule="TZ=UTC * * * * *")) == [
        'spec.schedule: Invalid value: "TZ=UTC * * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone '
        'field instead']
    assert check(cronjob(timeZone="Mars/Olympus")) == [
        'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus']
    assert check(cronjob(timeZone="")) == ['spec.timeZone: Invalid value: "": timeZone must be nil or non-empty string']
    assert check(cronjob(timeZone="Europe/Berlin")) == []
    assert check(cronjob(concurrencyPolicy="Sometimes")) == [
        'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"']
    assert check(cronjob(startingDeadlineSeconds=-1)) == [
        "spec.startingDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0"]
    long = "x" * 53
    assert check(cronjob(long)) == [f'metadata.name: Invalid value: "{long}": must be no more than 52 characters']
    old = cronjob(long)
    apply_defaults(CRONJOBS, old)
    assert check(cronjob(long), old) == []     # only creation is held to 52 characters


def test_cronjob_columns_and_cells():
    names = [(c["name"], c["type"], c["priority"]) for c in column_definitions(CRONJOBS)]
    assert names == [("Name", "string", 0), ("Schedule", "string", 0), ("Timezone", "string", 0),
                     ("Suspend", "boolean", 0), ("Active", "integer", 0), ("Last Schedule", "string", 0),
                     ("Age", "string", 0), ("Containers", "string", 1), ("Images", "string", 1),
                     ("Selector", "string", 1)]
    cj = cronjob(suspend=False)
    cj["metadata"]["creationTimestamp"] = ago(600)
    assert row_cells(CRONJOBS, cj, NOW) == ["hello", "*/5 * * * *", "<none>", "False", 0, "<none>", "10m",
                                            "c", "busybox", "<none>"]
    cj["spec"].update(timeZone="Asia/Tokyo", suspend=None)
    cj["status"] = {"active": [{"name": "hello-1"}], "lastScheduleTime": ago(65)}
    assert row_cells(CRONJOBS, cj, NOW)[2:6] == ["Asia/Tokyo", "<unset>", 1, "65s"]


def pdb(**spec) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(30)},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}


def test_pdb_validation_messages():
    assert messages(PDBS, pdb(minAvailable=1)) == []
    assert messages(PDBS, pdb(minAvailable=1, maxUnavailable="10%")) == [
        'spec.minAvailable: Invalid value: intstr.IntOrString{Type:0, IntVal:1, StrVal:""}: minAvailable and '
        'maxUnavailable cannot be both set']
    assert messages(PDBS, pdb(maxUnavailable="150%")) == [
        'spec.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"150%"}: must not be '
        'greater than 100%']
    assert messages(PDBS, pdb(minAvailable=-2)) == ["spec.minAvailable: Invalid value: -2: must be greater than or "
                                                    "equal to 0"]
    bad = pdb(minAvailable=1)
    bad["spec"]["selector"] = {"matchExpressions": [{"key": "app", "operator": "In"}]}
    assert messages(PDBS, bad) == ["spec.selector.matchExpressions[0].values: Required value: must be specified "
                                   "when `operator` is 'In' or 'NotIn'"]


def test_pdb_columns_and_cells():
    assert [c["name"] for c in column_definitions(PDBS)] == [
        "Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"]
    assert row_cells(PDBS, pdb(minAvailable=2), NOW) == ["web", "2", "N/A", 0, "30s"]
    assert row_cells(PDBS, {**pdb(maxUnavailable="25%"), "status": {"disruptionsAllowed": 1}}, NOW) == [
        "web", "N/A", "25%", 1, "30s"]


def job(**spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "work", "namespace": "default", "uid": "u1"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "busybox"}]}}, **spec}}


def test_job_indexed_and_pod_failure_policy_validation():
    def check(obj):
        apply_defaults(JOBS, obj)
        return messages(JOBS, obj)
    assert check(job(completionMode="Indexed", completions=3)) == []
    assert check(job(completionMode="Indexed")) == []          # completions defaults to 1 with parallelism unset
    assert check(job(completionMode="Indexed", parallelism=2)) == [
        "spec.completions: Required value: when completion mode is Indexed"]
    assert check(job(completionMode="Sometimes")) == [
        'spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"']
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
                        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    assert check(job(podFailurePolicy=policy)) == []
    bad = {"rules": [{"action": "Explode", "onExitCodes": {"operator": "In", "values": [0]}}, {"action": "Count"}]}
    assert check(job(podFailurePolicy=bad)) == [
        'spec.podFailurePolicy.rules[0].action: Unsupported value: "Explode": supported values: "Count", '
        '"FailIndex", "FailJob", "Ignore"',
        "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator",
        "spec.podFailurePolicy.rules[1]: Invalid value: specifying one of OnExitCodes and OnPodConditions is "
        "required"]
    restarting = job()
    del restarting["spec"]["template"]["spec"]["restartPolicy"]
    assert check(restarting) == ['spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"']
    cj = cronjob()
    del cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"]
    apply_defaults(CRONJOBS, cj)
    assert messages(CRONJOBS, cj) == ['spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid '
                                      'values: "OnFailure", "Never"']
    on_failure = job(podFailurePolicy=policy)
    on_failure["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    assert check(on_failure) == ['spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is '
                                 'supported when podFailurePolicy is specified']


def test_job_updates_keep_completions_unless_indexed_and_in_tandem():
    old = job(completions=3, parallelism=1)
    apply_defaults(JOBS, old)
    old["metadata"]["resourceVersion"] = "5"
    new = {**old, "spec": {**old["spec"], "completions": 4}}
    assert messages(JOBS, new, old) == ["spec.completions: Invalid value: 4: field is immutable"]
    old["spec"]["completionMode"] = "Indexed"
    new["spec"]["completionMode"] = "Indexed"
    assert messages(JOBS, new, old) == [
        "spec.completions: Invalid value: 4: can only be modified in tandem with spec.parallelism"]
    new["spec"]["parallelism"] = 4
    assert messages(JOBS, new, old) == []
    new["spec"]["completionMode"] = "NonIndexed"
    assert "spec.completionMode: Invalid value: \"NonIndexed\": field is immutable" in messages(JOBS, new, old)


def test_job_success_policy_validation():
    def check(**spec):
        obj = job(**spec)
        apply_defaults(JOBS, obj)
        return messages(JOBS, obj)
    indexed = {"completionMode": "Indexed", "completions": 5, "parallelism": 5}
    assert check(**indexed, successPolicy={"rules": [{"succeededIndexes": "0-2,4", "succeededCount": 2}]}) == []
    assert check(**indexed, successPolicy={"rules": []}) == [
        "spec.successPolicy.rules: Required value: at least one rules must be specified when the successPolicy is "
        "specified"]
    assert check(**indexed, successPolicy={"rules": [{}]}) == [
        "spec.successPolicy.rules[0]: Required value: at least one of succeededCount or succeededIndexes must be "
        "specified"]
    assert check(**indexed, successPolicy={"rules": [{"succeededIndexes": "3-1"}]}) == [
        'spec.successPolicy.rules[0].succeededIndexes: Invalid value: "3-1": error parsing succeededIndexes: '
        "non-increasing order, previous: 3, current: 1"]
    assert check(**indexed, successPolicy={"rules": [{"succeededIndexes": "7"}]}) == [
        'spec.successPolicy.rules[0].succeededIndexes: Invalid value: "7": error parsing succeededIndexes: too large '
        'index: "7"']
    assert check(**indexed, successPolicy={"rules": [{"succeededIndexes": "0-1", "succeededCount": 3}]}) == [
        "spec.successPolicy.rules[0].succeededCount: Invalid value: 3: must be less than or equal to 2 (the number "
        "of indexes in the specified succeededIndexes field)"]
    assert check(successPolicy={"rules": [{"succeededCount": 1}]})[0].endswith("requires indexed completion mode")
