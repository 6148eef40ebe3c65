# Two commands for a fresh machine: `make up` (start the cluster) and `make test` (run every test).
# `make dev` runs the same components as processes on this machine instead (development, integration tests).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_DIR ?= run

.PHONY: up down test deps images venv bench clean dev dev-down

$(STAMP): pyproject.toml
	@command -v python3 >/dev/null || { echo "python3 (>= 3.11) is required"; exit 1; }
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,cluster]'
	@touch $(STAMP)

venv: $(STAMP)

deps: images
	bash deploy/install-system-packages.sh

# The Docker engine (Debian's docker.io, started when none answers) and the locally built
# images (pause, busybox, nginx): docs/docker.md. A no-op when all are there.
images:
	@bash deploy/install-docker.sh
	@bash deploy/build-images.sh

# the docker compose cluster (deploy/compose.yaml): node containers with their own engines
up: $(STAMP) images
	VENV=$(VENV) bash deploy/cluster.sh up

down:
	@if docker info >/dev/null 2>&1; then VENV=$(VENV) bash deploy/cluster.sh down; fi
	@$(MAKE) -s dev-down

# the same components as processes on this machine, pods on its engine (docs: README "make dev")
dev: $(STAMP) images
	$(PY) -m kubeling up --run-dir $(RUN_DIR) $(UP_ARGS)

dev-down:
	@if [ -x $(PY) ]; then $(PY) -m kubeling down --run-dir $(RUN_DIR); fi

test: $(STAMP) deps
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: $(STAMP) deps
	$(PY) bench/store.py
	$(PY) bench/check_perf.py
	$(PY) bench/api.py
	$(PY) bench/scheduler.py
	$(PY) bench/pods.py

# `make down` keeps the compose cluster's data (volumes); the dev cluster's Docker pods keep running
# (as pods outlive a stopped kubelet) and kube-proxy's and the kubelets' iptables rules stay (as on a
# node). `make clean` removes all of it: containers, volumes, networks, rules, the images built
# here, the venv and ./run.
clean: down
	-@if docker info >/dev/null 2>&1; then VENV=$(VENV) bash deploy/cluster.sh clean; fi
	-@if [ -x $(PY) ]; then $(PY) -m kubeproxy --hostname-override node-1 --cleanup; $(PY) -m kubelet --cleanup; fi
	-@ids=$$(docker ps -aq --filter label=kubeling.io/node 2>/dev/null); [ -z "$$ids" ] || docker rm -f $$ids >/dev/null
	-@nets=$$(docker network ls -q --filter label=kubeling.io/node 2>/dev/null); [ -z "$$nets" ] || docker network rm $$nets >/dev/null
	-@for _ in 1 2 3 4 5 6; do imgs=$$(docker images -aq --filter label=io.kubeling.image=1 2>/dev/null | sort -u); \
		[ -z "$$imgs" ] && break; docker rmi -f $$imgs >/dev/null 2>&1; done   # children first, then their parents
	rm -rf $(VENV) $(RUN_DIR)
