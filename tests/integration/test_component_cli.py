"""Scheduler, controller-manager and kubelet as a user starts them: --help, a bad flag, a missing
kubeconfig, an apiserver that is not there (one clear line per retry), and SIGTERM (clean exit 0)."""
import signal
import subprocess
import sys

import pytest

from tests.support.clusters import REPO, free_port, wait_for

COMPONENTS = {"scheduler": "--port", "controllers": "--port", "kubelet": "--healthz-port"}
UNREACHABLE = {"scheduler": "pods informer: failed to list: GET https://127.0.0.1:1/api/v1/pods:",
               "controllers": "informer: failed to list: GET https://127.0.0.1:1/",
               "kubelet": "unable to register node with API server: POST https://127.0.0.1:1/api/v1/nodes:"}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO, timeout=60)


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_help_bad_flag_and_missing_kubeconfig(component, tmp_path):
    r = run(component, "--help")
    assert r.returncode == 0 and "--kubeconfig" in r.stdout
    r = run(component, "--kubeconfig", "x", "--no-such-flag")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1] == \
        f"{component}: error: unrecognized arguments: --no-such-flag"
    r = run(component, "--kubeconfig", str(tmp_path / "missing"), COMPONENTS[component], str(free_port()))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "missing" in r.stderr


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_unreachable_apiserver_is_one_line_per_retry_and_sigterm_exits_cleanly(component, tmp_path):
    kc = tmp_path / "kubeconfig"
    kc.write_text("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
                  "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
                  "users: [{name: u, user: {token: t}}]\n")
    log = tmp_path / "log"
    with open(log, "w") as out:
        p = subprocess.Popen([sys.executable, "-m", component, "--kubeconfig", str(kc), COMPONENTS[component],
                              str(free_port())], stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        wait_for(lambda: UNREACHABLE[component] in log.read_text(), 30, "the retry line")
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 0
    finally:
        if p.poll() is None:
            p.kill()
    text = log.read_text()
    assert "Traceback" not in text and "never retrieved" not in text, text[-2000:]
