#!/usr/bin/env bash
# A Docker engine for the kubelet's Docker runtime and the tests (docs/docker.md).
# Idempotent: does nothing when `docker info` answers. Otherwise installs Debian's
# docker.io (engine 20.10; the client on PATH may be newer, it negotiates the API version)
# when dockerd is missing, and starts dockerd in the background when no engine answers:
# through systemd when it runs, else detached (log /var/log/kubeling-dockerd.log, pidfile
# /var/run/docker.pid). Docker manages its own iptables chains; nothing here touches them.
set -euo pipefail

LOG=${KUBELING_DOCKERD_LOG:-/var/log/kubeling-dockerd.log}
PIDFILE=/var/run/docker.pid
DEADLINE=${KUBELING_DOCKERD_TIMEOUT:-60}
LOCK=/var/lock/kubeling-docker.lock

fail() { echo "install-docker: $*" >&2; exit 1; }
engine_up() { docker info >/dev/null 2>&1; }
alive() {  # alive PID: the process exists and is not a zombie
    local state
    state=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ -n "$state" ] && [ "$state" != Z ]
}

command -v docker >/dev/null 2>&1 || fail "no docker client on PATH"
engine_up && exit 0

case "${DOCKER_HOST:-unix:///var/run/docker.sock}" in
    unix:///var/run/docker.sock|unix:///run/docker.sock) ;;
    *) fail "DOCKER_HOST=$DOCKER_HOST does not answer (docker info failed); start that engine or unset DOCKER_HOST" ;;
esac

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || fail "no engine answers and starting dockerd needs root (no sudo)"
    SUDO="sudo"
fi

# One installer at a time (parallel make targets, several shells).
[ -w "$(dirname "$LOCK")" ] || LOCK=/tmp/kubeling-docker.lock
exec 9>>"$LOCK"
flock -w $((DEADLINE + 120)) 9 || fail "another install-docker.sh holds $LOCK"
engine_up && exit 0

if ! command -v dockerd >/dev/null 2>&1 && [ ! -x /usr/sbin/dockerd ] && [ ! -x /usr/bin/dockerd ]; then
    echo "installing docker.io (Debian's engine)"
    apt_log=$(mktemp)
    $SUDO apt-get update -qq >"$apt_log" 2>&1 || fail "apt-get update failed: $(tail -n 1 "$apt_log")"
    # Debian's docker.io brings its own containerd, runc, tini (docker-init) and iptables.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends docker.io >"$apt_log" 2>&1 \
        || fail "apt-get install docker.io failed: $(tail -n 1 "$apt_log")"
    rm -f "$apt_log"
fi
DOCKERD=$(command -v dockerd 2>/dev/null || { [ -x /usr/sbin/dockerd ] && echo /usr/sbin/dockerd; } || echo /usr/bin/dockerd)

wait_engine() {  # wait_engine PID|"" : until docker info answers, the deadline passes or PID dies
    local pid=$1 end=$((SECONDS + DEADLINE))
    while [ $SECONDS -lt $end ]; do
        engine_up && return 0
        if [ -n "$pid" ] && ! alive "$pid"; then
            return 1
        fi
        sleep 0.2
    done
    return 1
}

last_log_line() { $SUDO tail -n 20 "$LOG" 2>/dev/null | grep -iE 'level=(error|fatal)|failed|error' | tail -n 1 | cut -c1-300; }

# A dockerd that is still starting (package postinst, another shell): wait for it.
if [ -s "$PIDFILE" ]; then
    pid=$($SUDO cat "$PIDFILE" 2>/dev/null || true)
    if [ -n "$pid" ] && grep -q dockerd "/proc/$pid/cmdline" 2>/dev/null; then
        wait_engine "$pid" && exit 0
        fail "dockerd (pid $pid) runs but docker info does not answer after ${DEADLINE}s"
    fi
    # dead (or a zombie, or another program by now): dockerd would refuse to start over it
    $SUDO rm -f "$PIDFILE"
fi

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    echo "starting docker (systemd)"
    $SUDO systemctl start docker || fail "systemctl start docker failed (journalctl -u docker)"
    wait_engine "" && exit 0
    fail "docker.service started but docker info does not answer after ${DEADLINE}s (journalctl -u docker)"
fi

# The same for the containerd that dockerd supervises (left by a dockerd killed with -9):
# dockerd would wait for a zombie's socket until it times out.
CTRD_PIDFILE=/var/run/docker/containerd/containerd.pid
if [ -s "$CTRD_PIDFILE" ]; then
    cpid=$($SUDO cat "$CTRD_PIDFILE" 2>/dev/null || true)
    if [ -n "$cpid" ] && ! alive "$cpid"; then $SUDO rm -f "$CTRD_PIDFILE"; fi
fi

echo "starting dockerd (log $LOG)"
$SUDO mkdir -p "$(dirname "$LOG")"
# setsid: the engine outlives this shell, make and the terminal; its own pidfile guards doubles.
$SUDO setsid nohup "$DOCKERD" --pidfile "$PIDFILE" >>"$LOG" 2>&1 </dev/null 9>&- &
started=$!
# $! is the setsid/sudo wrapper: wait for the pidfile to name the real daemon.
end=$((SECONDS + DEADLINE))
pid=""
while [ $SECONDS -lt $end ] && [ -z "$pid" ]; do
    engine_up && exit 0
    pid=$($SUDO cat "$PIDFILE" 2>/dev/null || true)
    if [ -z "$pid" ] && ! alive "$started"; then
        fail "dockerd exited at start: $(last_log_line) (log $LOG)"
    fi
    [ -n "$pid" ] || sleep 0.1
done
wait_engine "$pid" && exit 0
if [ -n "$pid" ] && ! alive "$pid"; then
    fail "dockerd exited at start: $(last_log_line) (log $LOG)"
fi
fail "dockerd did not answer within ${DEADLINE}s: $(last_log_line) (log $LOG)"
