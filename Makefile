# Two commands for a fresh machine: `make up` (start the cluster) and `make test` (run every test).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_DIR ?= run

.PHONY: up down test deps images venv bench clean

$(STAMP): pyproject.toml
	@command -v python3 >/dev/null || { echo "python3 (>= 3.11) is required"; exit 1; }
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

deps: images
	bash deploy/install-system-packages.sh

# The Docker engine (Debian's docker.io, started when none answers) and the locally built
# images (pause, busybox, nginx): docs/docker.md. A no-op when all are there.
images:
	@bash deploy/install-docker.sh
	@bash deploy/build-images.sh

up: $(STAMP) images
	$(PY) -m kubeling up --run-dir $(RUN_DIR) $(UP_ARGS)

down:
	@if [ -x $(PY) ]; then $(PY) -m kubeling down --run-dir $(RUN_DIR); else echo "nothing to stop"; fi

test: $(STAMP) deps
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: $(STAMP) deps
	$(PY) bench/store.py
	$(PY) bench/api.py
	$(PY) bench/scheduler.py
	$(PY) bench/pods.py

# the Docker nodes' pods keep running after `make down` (as pods outlive a stopped kubelet), and
# kube-proxy's and the kubelets' iptables rules stay (as on a node); `make clean` removes them,
# the pod networks, the venv and ./run
clean: down
	-@if [ -x $(PY) ]; then $(PY) -m kubeproxy --hostname-override node-1 --cleanup; $(PY) -m kubelet --cleanup; fi
	-@ids=$$(docker ps -aq --filter label=kubeling.io/node 2>/dev/null); [ -z "$$ids" ] || docker rm -f $$ids >/dev/null
	-@nets=$$(docker network ls -q --filter label=kubeling.io/node 2>/dev/null); [ -z "$$nets" ] || docker network rm $$nets >/dev/null
	rm -rf $(VENV) $(RUN_DIR)
