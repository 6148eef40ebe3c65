"""The hollow runtime's simulated container lifecycle: exits, restarts and CrashLoopBackOff."""
from kubelet.runtime import ContainerState

INF = float("inf")


def test_running_forever_without_an_exit_code():
    v = ContainerState("c", "img", 100.0, 101.0).at(10_000, "Always")
    assert (v.state, v.restarts, v.last, v.ready_at) == ("running", 0, None, 101.0)


def test_exit_with_restart_policy_never_is_terminal():
    v = ContainerState("c", "img", 100.0, 100.0, exit_code=3, run_for=5).at(104, "Never")
    assert v.state == "running" and v.next_change == 105
    v = ContainerState("c", "img", 100.0, 100.0, exit_code=3, run_for=5).at(200, "Never")
    assert (v.state, v.restarts, v.last) == ("terminated", 0, (100.0, 105.0))


def test_on_failure_does_not_restart_a_success():
    assert ContainerState("c", "i", 0.0, 0.0, exit_code=0).at(50, "OnFailure").state == "terminated"
    assert ContainerState("c", "i", 0.0, 0.0, exit_code=1).at(50, "OnFailure").state != "terminated"


def test_crash_loop_restarts_at_once_then_backs_off_10s_doubling():
    c = ContainerState("c", "img", 0.0, 0.0, exit_code=1, run_for=1)
    v = c.at(1.5, "Always")       # exited at 1, restarted at once
    assert (v.state, v.restarts, v.last, v.ready_at) == ("running", 1, (0.0, 1.0), 1.0)
    v = c.at(5, "Always")         # second run ended at 2: back-off 10 s
    assert (v.state, v.restarts, v.backoff, v.next_change) == ("waiting", 1, 10.0, 12.0)
    v = c.at(12.5, "Always")
    assert (v.state, v.restarts, v.last) == ("running", 2, (1.0, 2.0))
    v = c.at(20, "Always")        # third run ended at 13: back-off 20 s
    assert (v.state, v.restarts, v.backoff) == ("waiting", 2, 20.0)
    assert c.at(100_000, "Always").backoff == 300.0
