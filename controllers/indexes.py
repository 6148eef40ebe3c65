"""Completion indexes of an Indexed Job as upstream keeps them in status.completedIndexes and
status.failedIndexes (ordered intervals written "1,3-5,7,8", a two-index run with a comma), and
the per-index failure counts that backoffLimitPerIndex pods carry in annotations."""
from __future__ import annotations

from typing import Callable, Iterable

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"     # annotation and label
FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"
INDEX_ENV = "JOB_COMPLETION_INDEX"


def parse(text: str | None, completions: int) -> set[int]:
    """parseIndexesFromString: corrupt intervals are skipped, indexes beyond completions dropped."""
    out: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high) if high else int(low)
        except ValueError:
            continue
        out.update(range(first, min(last, completions - 1) + 1))
    return out


def format_indexes(indexes: Iterable[int]) -> str:
    out, run = [], []
    for ix in sorted(set(indexes)):
        if run and ix == run[-1] + 1:
            run.append(ix)
            continue
        if run:
            out.append(_run(run))
        run = [ix]
    if run:
        out.append(_run(run))
    return ",".join(out)


def _run(run: list[int]) -> str:
    if len(run) == 1:
        return str(run[0])
    return f"{run[0]},{run[-1]}" if len(run) == 2 else f"{run[0]}-{run[-1]}"


def pod_index(pod: dict) -> int | None:
    """getCompletionIndex: the annotation as a non-negative integer, else None."""
    value = (pod["metadata"].get("annotations") or {}).get(COMPLETION_INDEX, "")
    return int(value) if value.isdigit() else None


def _count(pod: dict, key: str) -> int:
    value = (pod["metadata"].get("annotations") or {}).get(key, "")
    return int(value) if value.isdigit() and int(value) <= 2**31 - 1 else 0


def failure_counts(pod: dict) -> tuple[int, int]:
    """(failures counted, failures ignored) of the pod's index before this pod."""
    return _count(pod, FAILURE_COUNT), _count(pod, IGNORED_FAILURE_COUNT)


def failure_count_annotations(failed: list[dict], counts: Callable[[dict], bool]) -> dict[str, str]:
    """The counts a replacement pod carries (getNewIndexFailureCounts): those of the index's
    latest failed pod (most failures, then last finished) plus that pod's own failure."""
    if not failed:
        return {FAILURE_COUNT: "0"}
    last = max(failed, key=lambda p: (sum(failure_counts(p)), finished_at(p)))
    counted, ignored = failure_counts(last)
    if counts(last):
        counted += 1
    else:
        ignored += 1
    return {FAILURE_COUNT: str(counted), **({IGNORED_FAILURE_COUNT: str(ignored)} if ignored else {})}


def finished_at(pod: dict) -> str:
    """When the pod's last container finished (RFC 3339), "" when none reports it."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    states = [(cs.get("state") or {}).get("terminated") or {} for cs in statuses]
    return max((t.get("finishedAt") or "" for t in states), default="")


def success_policy_match(policy: dict | None, completions: int, succeeded: set[int]) -> str | None:
    """matchSuccessPolicy: "Matched rules at index N" for the first rule the succeeded indexes
    satisfy (all of its succeededIndexes, or succeededCount of them, or of all indexes)."""
    if not policy or not succeeded:
        return None
    for i, rule in enumerate(policy.get("rules") or []):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            required = parse(rule["succeededIndexes"], completions)
            if not required:
                continue
            done = len(required & succeeded)
            if done == len(required) or (count is not None and done >= count):
                return f"Matched rules at index {i}"
        elif count is not None and len(succeeded) >= count:
            return f"Matched rules at index {i}"
    return None


def first_pending(count: int, completions: int, taken: set[int]) -> list[int]:
    """firstPendingIndexes: the lowest `count` indexes below completions not in `taken`."""
    out: list[int] = []
    ix = 0
    while len(out) < count and ix < completions:
        if ix not in taken:
            out.append(ix)
        ix += 1
    return out


def indexed_template(tpl: dict, job_name: str, index: int) -> dict:
    """The pod template for one index: annotation and label, hostname <job>-<index> (unless set),
    JOB_COMPLETION_INDEX from the label in every container (upstream adds it through the downward API)."""
    meta = tpl.setdefault("metadata", {})
    meta["annotations"] = {**(meta.get("annotations") or {}), COMPLETION_INDEX: str(index)}
    meta["labels"] = {**(meta.get("labels") or {}), COMPLETION_INDEX: str(index)}
    spec = tpl.setdefault("spec", {})
    if not spec.get("hostname"):
        spec["hostname"] = f"{job_name}-{index}"
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            env = c.setdefault("env", [])
            if not any(e.get("name") == INDEX_ENV for e in env):
                env.append({"name": INDEX_ENV, "valueFrom": {"fieldRef": {
                    "fieldPath": f"metadata.labels['{COMPLETION_INDEX}']"}}})
    return tpl


def generate_name(job_name: str, index: int) -> str:
    """podGenerateNameWithIndex: <job>-<index>-, the job name cut so the prefix fits 58 characters."""
    suffix = f"-{index}-"
    prefix = job_name + suffix
    return prefix if len(prefix) <= 58 else prefix[:58 - len(suffix)] + suffix
