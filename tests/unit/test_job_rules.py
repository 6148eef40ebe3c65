"""Indexed Jobs' index bookkeeping and podFailurePolicy matching, as upstream's job controller."""
from __future__ import annotations

from controllers import indexes, podfailurepolicy


def test_completed_indexes_round_trip_in_upstream_notation():
    assert indexes.format_indexes([0, 1, 2, 4, 6, 7, 9]) == "0-2,4,6,7,9"
    assert indexes.format_indexes([]) == ""
    assert indexes.parse("0-2,4,6,7,9", 10) == {0, 1, 2, 4, 6, 7, 9}
    assert indexes.parse("1-8,x,9", 5) == {1, 2, 3, 4}        # corrupt parts skipped, range cut at completions


def test_first_pending_indexes_skip_taken_ones():
    assert indexes.first_pending(3, 6, {0, 2}) == [1, 3, 4]
    assert indexes.first_pending(5, 3, {1}) == [0, 2]


def test_indexed_pod_template():
    tpl = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    out = indexes.indexed_template(tpl, "work", 3)
    assert out["metadata"]["annotations"] == {"batch.kubernetes.io/job-completion-index": "3"}
    assert out["metadata"]["labels"] == {"app": "x", "batch.kubernetes.io/job-completion-index": "3"}
    assert out["spec"]["hostname"] == "work-3"
    assert out["spec"]["containers"][0]["env"] == [{"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
        "fieldPath": "metadata.labels['batch.kubernetes.io/job-completion-index']"}}}]
    assert indexes.generate_name("work", 3) == "work-3-"
    assert indexes.generate_name("a" * 60, 12) == "a" * 54 + "-12-"


def failed_pod(code: int = 0, conditions=(), container: str = "main") -> dict:
    return {"metadata": {"name": "p", "namespace": "ns"}, "status": {
        "phase": "Failed", "conditions": [{"type": t, "status": "True"} for t in conditions],
        "containerStatuses": [{"name": container, "state": {"terminated": {"exitCode": code}}}]}}


POLICY = {"rules": [
    {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
    {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}}]}


def test_pod_failure_policy_rules_in_order():
    v = podfailurepolicy.match(POLICY, failed_pod(42))
    assert (v.action, v.counts) == ("FailJob", True)
    assert v.message == "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0"
    assert podfailurepolicy.match(POLICY, failed_pod(42, container="side")).action == "Count"  # rule 0 names main
    assert podfailurepolicy.match(POLICY, failed_pod(1, ("DisruptionTarget",))) == podfailurepolicy.Verdict(
        "Ignore", False)
    assert podfailurepolicy.match(POLICY, failed_pod(2)) == podfailurepolicy.NO_RULE     # NotIn [1, 2]: no match
    assert podfailurepolicy.match(None, failed_pod(42)) == podfailurepolicy.NO_RULE
    by_condition = {"rules": [{"action": "FailJob", "onPodConditions": [{"type": "ConfigIssue"}]}]}
    assert podfailurepolicy.match(by_condition, failed_pod(1, ("ConfigIssue",))).message == (
        "Pod ns/p has condition ConfigIssue matching FailJob rule at index 0")


def test_success_policy_rules():
    policy = {"rules": [{"succeededIndexes": "0,2-3"}, {"succeededIndexes": "4-9", "succeededCount": 2},
                        {"succeededCount": 6}]}
    assert indexes.success_policy_match(policy, 10, {0, 2}) is None
    assert indexes.success_policy_match(policy, 10, {0, 2, 3}) == "Matched rules at index 0"
    assert indexes.success_policy_match(policy, 10, {5, 9}) == "Matched rules at index 1"
    assert indexes.success_policy_match(policy, 10, {0, 1, 5, 6, 7}) == "Matched rules at index 1"
    assert indexes.success_policy_match({"rules": [{"succeededCount": 3}]}, 10, {1, 2, 3}) == "Matched rules at index 0"
    assert indexes.success_policy_match(None, 10, {1}) is None
