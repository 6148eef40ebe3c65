"""A Job's podFailurePolicy applied to one failed pod (upstream's matchPodFailurePolicy): the first
rule whose exit codes or pod conditions match decides whether the failure fails the Job, fails its
index, is ignored or is counted against backoffLimit."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    action: str | None        # FailJob, FailIndex, Ignore, Count; None when no rule matched
    counts: bool              # whether the failure counts against backoffLimit
    message: str | None = None   # FailJob: the Job's failure message


NO_RULE = Verdict(None, True)


def _failed_container(status: dict, req: dict) -> dict | None:
    """The first terminated container (app containers first) whose non-zero exit code matches."""
    values, name = set(req.get("values") or []), req.get("containerName")
    for key in ("containerStatuses", "initContainerStatuses"):
        for cs in status.get(key) or []:
            code = ((cs.get("state") or {}).get("terminated") or {}).get("exitCode")
            if not code or (name and cs.get("name") != name):
                continue
            if (code in values) == (req.get("operator") == "In"):
                return cs
    return None


def _condition(status: dict, patterns: list[dict]) -> dict | None:
    for pattern in patterns:
        for cond in status.get("conditions") or []:
            if cond.get("type") == pattern.get("type") and cond.get("status") == pattern.get("status", "True"):
                return cond
    return None


def match(policy: dict | None, pod: dict) -> Verdict:
    if not policy:
        return NO_RULE
    status, meta = pod.get("status") or {}, pod["metadata"]
    for i, rule in enumerate(policy.get("rules") or []):
        action = rule.get("action")
        if rule.get("onExitCodes") is not None:
            cs = _failed_container(status, rule["onExitCodes"])
            if cs is None:
                continue
            why = (f"Container {cs.get('name')} for pod {meta['namespace']}/{meta['name']} failed with exit code "
                   f"{cs['state']['terminated']['exitCode']} matching {action} rule at index {i}")
        elif rule.get("onPodConditions"):
            cond = _condition(status, rule["onPodConditions"])
            if cond is None:
                continue
            why = (f"Pod {meta['namespace']}/{meta['name']} has condition {cond.get('type')} matching {action} "
                   f"rule at index {i}")
        else:
            continue
        if action == "Ignore":
            return Verdict("Ignore", False)
        if action == "FailJob":
            return Verdict("FailJob", True, why)
        if action in ("Count", "FailIndex"):
            return Verdict(action, True)
    return NO_RULE
