"""Table columns and validation messages of ResourceQuota, LimitRange and PriorityClass."""
from datetime import datetime, timezone

from apiserver.api.tables import column_definitions, row_cells
from apiserver.api.validation import validate
from kubeling.api.resources import lookup

RQ, LR = lookup("", "v1", "resourcequotas"), lookup("", "v1", "limitranges")
PC = lookup("scheduling.k8s.io", "v1", "priorityclasses")
NOW = datetime(2026, 1, 1, 0, 10, tzinfo=timezone.utc)
META = {"name": "q", "namespace": "ns", "creationTimestamp": "2026-01-01T00:00:00Z"}


def test_tables():
    q = {"metadata": META, "status": {"hard": {"pods": "2", "limits.cpu": "2", "requests.memory": "1Gi"},
                                      "used": {"pods": "1", "limits.cpu": "500m"}}}
    assert [c["name"] for c in column_definitions(RQ)] == ["Name", "Age", "Request", "Limit"]
    assert row_cells(RQ, q, NOW) == ["q", "10m", "pods: 1/2, requests.memory: 0/1Gi", "limits.cpu: 500m/2"]
    pc = {"metadata": {"name": "high", "creationTimestamp": "2026-01-01T00:00:00Z"}, "value": 1000,
          "preemptionPolicy": "PreemptLowerPriority"}
    assert [c["name"] for c in column_definitions(PC)] == ["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"]
    assert row_cells(PC, pc, NOW) == ["high", 1000, False, "10m", "PreemptLowerPriority"]
    assert [c["name"] for c in column_definitions(LR)] == ["Name", "Created At"]


def rendered(r, obj, old=None):
    return [c.render() for c in validate(r, obj, old)]


def test_validation_messages():
    bad = {"metadata": META, "spec": {"hard": {"pods": "1.5", "cpu": "-1"}, "scopes": ["Terminating", "NotTerminating"]}}
    assert rendered(RQ, bad) == ['spec.hard[pods]: Invalid value: "1.5": must be an integer',
                                 'spec.hard[cpu]: Invalid value: "-1": must be greater than or equal to 0',
                                 'spec.scopes: Invalid value: []core.ResourceQuotaScope{"Terminating", '
                                 '"NotTerminating"}: conflicting scopes']
    lr = {"metadata": META, "spec": {"limits": [{"type": "Container", "min": {"cpu": "200m"}, "max": {"cpu": "100m"}}]}}
    assert rendered(LR, lr) == ['spec.limits[0].min[cpu]: Invalid value: "200m": min value 200m is greater than max '
                                'value 100m']
    pc = {"metadata": {"name": "big"}, "value": 2000000000}
    assert rendered(PC, pc) == ["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]
    old = {"metadata": {"name": "big"}, "value": 1}
    assert rendered(PC, {**old, "value": 2}, old) == ["value: Forbidden: may not be changed in an update."]
