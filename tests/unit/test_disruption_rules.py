"""The disruption controller's arithmetic: int-or-percent budgets, the DisruptionAllowed condition,
and when a pod's DisruptionTarget condition counts as stale."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from controllers.disruption import ScaleError, allowed_condition, scaled_value, stale_disruption_wait


def test_scaled_values_round_as_upstream():
    assert scaled_value(3, 10, True) == 3
    assert scaled_value("25%", 5, True) == 2          # 1.25 up
    assert scaled_value("25%", 5, False) == 1
    assert scaled_value("0%", 5, True) == 0
    with pytest.raises(ScaleError):
        scaled_value("half", 5, True)


def test_condition_keeps_its_transition_time_while_status_holds():
    first = allowed_condition([], 2, 1)
    assert (first["status"], first["reason"], first["message"], first["observedGeneration"]) == (
        "True", "SufficientPods", "", 1)
    old = {**first, "lastTransitionTime": "2026-01-01T00:00:00Z"}
    assert allowed_condition([old], 1, 2)["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    flipped = allowed_condition([old], 0, 2)
    assert (flipped["status"], flipped["reason"]) == ("False", "InsufficientPods")
    assert flipped["lastTransitionTime"] != "2026-01-01T00:00:00Z"
    assert allowed_condition([], 0, 1, "SyncFailed", "boom")["reason"] == "SyncFailed"


def pod(cond: dict | None, deleting: bool = False, phase: str = "Running") -> dict:
    meta = {"name": "p", "namespace": "ns", **({"deletionTimestamp": "2026-01-01T00:00:00Z"} if deleting else {})}
    return {"metadata": meta, "status": {"phase": phase, "conditions": [cond] if cond else []}}


def test_stale_disruption_target():
    just_now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    marked = {"type": "DisruptionTarget", "status": "True", "lastTransitionTime": just_now,
              "reason": "EvictionByEvictionAPI"}
    wait = stale_disruption_wait(pod(marked))
    assert wait is not None and 110 < wait <= 120
    assert stale_disruption_wait(pod({**marked, "lastTransitionTime": "2020-01-01T00:00:00Z"})) == 0
    assert stale_disruption_wait(pod(marked, deleting=True)) is None
    assert stale_disruption_wait(pod(marked, phase="Failed")) is None
    assert stale_disruption_wait(pod({**marked, "reason": "TerminationByKubelet"})) is None
    assert stale_disruption_wait(pod({**marked, "status": "False"})) is None
    assert stale_disruption_wait(pod(None)) is None
