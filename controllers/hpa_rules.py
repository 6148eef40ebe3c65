"""How an HPA turns a metric recommendation into a replica count: stabilization windows, scaling
policies (spec.behavior) or, without a behavior, the legacy rate limit. Pure functions over the
HPA's recommendation and scale-event history, following the horizontal controller of 1.32
(normalizeDesiredReplicas / normalizeDesiredReplicasWithBehaviors), so reasons and messages match.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

SCALE_UP_LIMIT_FACTOR, SCALE_UP_LIMIT_MINIMUM = 2.0, 4.0
WITHIN_RANGE = ("DesiredWithinRange", "the desired count is within the acceptable range")
TOO_MANY = ("TooManyReplicas", "the desired replica count is more than the maximum replica count")
TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica count")
UP_LIMIT = ("ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")
DOWN_LIMIT = ("ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate")


@dataclass
class History:
    """Per-HPA memory of the controller: (time, recommendation) and (time, replica change) samples."""
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    up_events: list[tuple[float, int]] = field(default_factory=list)
    down_events: list[tuple[float, int]] = field(default_factory=list)


@dataclass
class Outcome:
    replicas: int
    able_reason: str          # AbleToScale=True reason before a rescale happens
    able_message: str
    limited: bool             # ScalingLimited status
    limit_reason: str
    limit_message: str


def _record(samples: list[tuple[float, int]], now: float, value: int, max_age: float) -> None:
    """Append a sample, reusing the slot of one older than max_age as upstream does."""
    for i, (t, _) in enumerate(samples):
        if t < now - max_age:
            samples[i] = (now, value)
            return
    samples.append((now, value))


def normalize(current: int, desired: int, lo: int, hi: int, behavior: dict | None, history: History,
              now: float, downscale_window: float) -> Outcome:
    """Stabilize the recommendation, then limit it by min/max and the scaling rate."""
    if behavior is None:
        window = [r for t, r in history.recommendations if t >= now - downscale_window]
        stabilized = max([desired, *window])
        _record(history.recommendations, now, desired, downscale_window)
        able = ("ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest "
                "recent recommendation") if stabilized != desired else None
        replicas, (reason, message) = _legacy_limits(current, stabilized, lo, hi)
    else:
        up, down = behavior.get("scaleUp") or {}, behavior.get("scaleDown") or {}
        up_window = up.get("stabilizationWindowSeconds")
        down_window = down.get("stabilizationWindowSeconds")
        up_window = 0 if up_window is None else up_window
        down_window = downscale_window if down_window is None else down_window
        up_rec = min([desired, *(r for t, r in history.recommendations if t > now - up_window)])
        down_rec = max([desired, *(r for t, r in history.recommendations if t > now - down_window)])
        stabilized = min(max(current, up_rec), down_rec)
        _record(history.recommendations, now, desired, max(up_window, down_window))
        able = None
        if stabilized != desired:
            able = ("ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest "
                    "recent recommendation") if desired >= current else \
                ("ScaleDownStabilized", "recent recommendations were higher than current one, applying the "
                 "highest recent recommendation")
        replicas, (reason, message) = _behavior_limits(current, stabilized, lo, hi, up, down, history, now)
    able = able or ("ReadyForNewScale", "recommended size matches current size")
    return Outcome(replicas, able[0], able[1], replicas != stabilized, reason, message)


def _legacy_limits(current: int, desired: int, lo: int, hi: int) -> tuple[int, tuple[str, str]]:
    scale_up_limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
    maximum, why = (scale_up_limit, UP_LIMIT) if hi > scale_up_limit else (hi, TOO_MANY)
    if desired < lo:
        return lo, TOO_FEW
    if desired > maximum:
        return maximum, why
    return desired, WITHIN_RANGE


def _change_in_period(events: list[tuple[float, int]], period: float, now: float) -> int:
    return sum(change for t, change in events if t > now - period)


def _policy_limit(current: int, rules: dict, history: History, now: float, up: bool) -> int:
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    proposals = []
    for p in rules.get("policies") or []:
        period = p.get("periodSeconds", 15)
        start = current - _change_in_period(history.up_events, period, now) + \
            _change_in_period(history.down_events, period, now)
        value = p.get("value", 0)
        if p.get("type") == "Pods":
            proposals.append(start + value if up else start - value)
        elif up:
            proposals.append(math.ceil(start * (1 + value / 100)))
        else:
            proposals.append(int(start * (1 - value / 100)))
    if not proposals:
        return current
    # for scale up Max means the most permissive (highest) limit; for scale down the lowest
    most = max if up else min
    least = min if up else max
    return (most if select == "Max" else least)(proposals)


def _behavior_limits(current: int, desired: int, lo: int, hi: int, up: dict, down: dict, history: History,
                     now: float) -> tuple[int, tuple[str, str]]:
    if desired > current:
        limit = max(_policy_limit(current, up, history, now, True), current)
        maximum, why = (limit, UP_LIMIT) if hi > limit else (hi, TOO_MANY)
        if desired > maximum:
            return maximum, why
    elif desired < current:
        limit = min(_policy_limit(current, down, history, now, False), current)
        minimum, why = (limit, DOWN_LIMIT) if lo < limit else (lo, TOO_FEW)
        if desired < minimum:
            return minimum, why
    return desired, WITHIN_RANGE


def record_scale(behavior: dict | None, history: History, now: float, before: int, after: int) -> None:
    """Remember a rescale so rate policies see it (only HPAs with a behavior keep events)."""
    if behavior is None or before == after:
        return
    up = after > before
    rules = behavior.get("scaleUp" if up else "scaleDown") or {}
    longest = max([p.get("periodSeconds", 15) for p in rules.get("policies") or []] or [0])
    _record(history.up_events if up else history.down_events, now, abs(after - before), longest)
