"""Deployment rolling update: how far old ReplicaSets are scaled down."""
from controllers.deployment import old_sizes


def rs(name: str, replicas: int, available: int, created: str = "2026-01-01T00:00:00Z") -> dict:
    return {"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"replicas": replicas}, "status": {"availableReplicas": available}}


def test_scales_old_down_as_far_as_min_available_allows():
    assert old_sizes(3, rs("new", 1, 1), [rs("old", 4, 4)]) == {"old": 2}
    assert old_sizes(3, rs("new", 1, 0), [rs("old", 4, 4)]) == {"old": 3}


def test_unhealthy_old_pods_go_first():
    assert old_sizes(3, rs("new", 1, 1), [rs("old", 4, 2)]) == {"old": 2}
    assert old_sizes(3, rs("new", 1, 0), [rs("old", 4, 2)]) == {"old": 3}


def test_a_scale_down_not_yet_reported_does_not_count_the_pods_being_deleted():
    # old was scaled 4 -> 3 and its status still says 4 available; one new pod became ready
    assert old_sizes(3, rs("new", 2, 1), [rs("old", 3, 4)]) == {"old": 2}


def test_oldest_replica_set_goes_first():
    old = [rs("b", 2, 2, "2026-01-02T00:00:00Z"), rs("a", 2, 2, "2026-01-01T00:00:00Z")]
    assert old_sizes(3, rs("new", 1, 1), old) == {"a": 0, "b": 2}
