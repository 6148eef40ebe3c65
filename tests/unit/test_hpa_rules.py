"""HPA normalization: stabilization windows, behavior policies and the legacy rate limit."""
from controllers.hpa_rules import History, normalize, record_scale
from apiserver.api.defaults import _hpa_v2

WINDOW = 300.0


def behavior(**given) -> dict:
    hpa = {"spec": {"behavior": given, "metrics": [1]}}
    _hpa_v2(hpa)
    return hpa["spec"]["behavior"]


def test_legacy_limits_double_or_four_and_min_max():
    h = History()
    out = normalize(1, 10, 1, 20, None, h, 0, WINDOW)
    assert (out.replicas, out.limited, out.limit_reason) == (4, True, "ScaleUpLimit")
    out = normalize(4, 30, 1, 6, None, History(), 0, WINDOW)
    assert (out.replicas, out.limit_reason) == (6, "TooManyReplicas")
    assert out.limit_message == "the desired replica count is more than the maximum replica count"
    out = normalize(3, 3, 1, 6, None, History(), 0, WINDOW)
    assert (out.replicas, out.limited, out.limit_reason, out.able_reason) == (3, False, "DesiredWithinRange",
                                                                              "ReadyForNewScale")


def test_legacy_scale_down_waits_for_the_window():
    h = History()
    assert normalize(3, 5, 1, 10, None, h, 0, WINDOW).replicas == 5
    out = normalize(5, 1, 1, 10, None, h, 100, WINDOW)
    assert (out.replicas, out.able_reason) == (5, "ScaleDownStabilized")
    assert normalize(5, 1, 1, 10, None, h, 301, WINDOW).replicas == 1


def test_default_behavior_scales_up_by_max_of_4_pods_or_100_percent_per_15s():
    b, h = behavior(), History()
    out = normalize(1, 10, 1, 20, b, h, 0, WINDOW)
    assert (out.replicas, out.limit_reason) == (5, "ScaleUpLimit")   # max(1+4, 2*1)
    record_scale(b, h, 0, 1, 5)
    # within the same 15 s period the budget is measured from the period's start (1 replica)
    assert normalize(5, 20, 1, 20, b, h, 5, WINDOW).replicas == 5
    assert normalize(5, 20, 1, 20, b, h, 16, WINDOW).replicas == 10   # max(5+4, 2*5)


def test_policies_select_min_and_disabled():
    b = behavior(scaleUp={"selectPolicy": "Min", "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60},
                                                              {"type": "Percent", "value": 50, "periodSeconds": 60}]},
                 scaleDown={"selectPolicy": "Disabled"})
    out = normalize(4, 10, 1, 10, b, History(), 0, WINDOW)
    assert out.replicas == 5   # min(4+1, ceil(4*1.5))
    out = normalize(4, 1, 1, 10, b, History(), 0, 0)
    assert (out.replicas, out.limit_reason) == (4, "ScaleDownLimit")


def test_scale_down_percent_policy_and_stabilization_window_from_behavior():
    b = behavior(scaleDown={"stabilizationWindowSeconds": 0,
                            "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]})
    h = History()
    out = normalize(10, 1, 1, 10, b, h, 0, WINDOW)
    assert (out.replicas, out.limit_reason, out.limited) == (5, "ScaleDownLimit", True)
    record_scale(b, h, 0, 10, 5)
    assert normalize(5, 1, 1, 10, b, h, 30, WINDOW).replicas == 5     # 50 % of the period's 10 used up
    assert normalize(5, 1, 1, 10, b, h, 61, WINDOW).replicas == 2     # new period: int(5 * 0.5)


def test_scale_up_stabilization_window_takes_lowest_recent():
    b = behavior(scaleUp={"stabilizationWindowSeconds": 60})
    h = History()
    assert normalize(2, 2, 1, 10, b, h, 0, WINDOW).replicas == 2
    out = normalize(2, 6, 1, 10, b, h, 10, WINDOW)
    assert (out.replicas, out.able_reason) == (2, "ScaleUpStabilized")
    assert normalize(2, 6, 1, 10, b, h, 61, WINDOW).replicas == 6


def test_unavailable_metrics_api_is_a_failure_message_not_an_error():
    """Without a metrics.k8s.io server the HPA reports FailedGetResourceMetric (the caller writes
    ScalingActive=False) instead of failing its sync."""
    import asyncio

    from controllers.hpa import HPAController
    from kubeling.client import ApiError

    class NoMetricsApi:
        async def usage(self, *a):
            raise ApiError(404, {"reason": "NotFound", "message": "the server could not find the requested resource"})

    class NoPods:
        def list(self, ns):
            return []
    c = HPAController.__new__(HPAController)
    c.metrics, c.pods = NoMetricsApi(), NoPods()
    spec = {"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                                      "averageUtilization": 10}}}]}
    best, _, statuses, failure = asyncio.run(c._recommend("default", "app=x", spec, 1))
    assert best is None and statuses == []
    assert failure == ("failed to get cpu utilization: unable to get metrics for resource cpu: unable to fetch "
                       "metrics from resource metrics API: the server could not find the requested resource")
