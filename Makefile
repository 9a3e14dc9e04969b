# Stockade: `make run` starts the service, `make test` passes the tests. Both set up what they need,
# idempotently, on a fresh Debian 12 machine as root.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .stamps
APT_PACKAGES := bubblewrap libseccomp2 python3 python3-venv gcc libc6-dev util-linux procps iproute2 ca-certificates \
	sqlite3 chromium nodejs
# Only `make test` installs these: tests/cluster starts private servers of them on loopback ports of its
# own (initdb into a temp dir). Debian's default services are not used.
# systemd: tests/packaging verifies deploy/systemd with its systemd-analyze. jq: docs/api.md's examples.
# podman, runc, podman-compose (and make image's tools): tests/packaging builds and runs the image.
TEST_APT_PACKAGES := postgresql redis-server systemd jq podman runc podman-compose
PYTHON ?= python3

.PHONY: help setup install image run test soak lint typecheck unit toolchains bench clean

help:
	@echo "make run         start the Stockade service (sets everything up first)"
	@echo "make test        ruff, mypy and the whole pytest suite (sets everything up first)"
	@echo "make toolchains  install every language toolchain (Debian packages)"
	@echo "make install     the systemd unit (deploy/systemd), running this checkout's stockade"
	@echo "make image       the OCI image of the last commit (FLAVOUR=stockade or stockade-full), docs/deploy.md"
	@echo "make soak        the soak and fault suite, tests/soak (STOCKADE_SOAK_N executions, default 5000)"
	@echo "make bench       run the benchmarks in bench/"

$(STAMPS)/apt: Makefile
	@mkdir -p $(STAMPS)
	@if [ "$$(id -u)" != 0 ]; then echo "make: run as root (apt packages, cgroups and per-box uids need it)"; exit 1; fi
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi
	@touch $@

$(STAMPS)/apt-test: Makefile $(STAMPS)/apt
	@if ! dpkg -s $(TEST_APT_PACKAGES) >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_APT_PACKAGES) >/dev/null; \
	fi
	@touch $@

# The npm clients tests/compat drives (pinned by its package-lock.json). npm comes with NodeSource's
# nodejs; Debian's nodejs wants its `npm` package beside it.
$(STAMPS)/npm-test: tests/compat/npm/package-lock.json $(STAMPS)/apt
	@command -v npm >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null)
	npm ci --prefix tests/compat/npm --no-audit --no-fund --ignore-scripts --silent
	@touch $@

$(STAMPS)/venv: pyproject.toml $(STAMPS)/apt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

# `stockade` as typed in a new root shell: a link on root's PATH to this checkout's entry point (kept
# when it already points there; a regular file of that name is someone else's and is left alone).
LAUNCHER := /usr/local/bin/stockade

setup: $(STAMPS)/venv
	@target="$(CURDIR)/$(BIN)/stockade"; \
	if [ -e $(LAUNCHER) ] && [ ! -L $(LAUNCHER) ]; then \
		echo "make: $(LAUNCHER) exists and is not a link: not replaced; call $$target instead"; \
	elif [ "$$(readlink $(LAUNCHER))" != "$$target" ]; then \
		ln -sfn "$$target" $(LAUNCHER) && echo "make: $(LAUNCHER) -> $$target"; \
	fi

# The units run $(LAUNCHER), the link `setup` makes. Enable one with `systemctl enable --now stockade`
# (or stockade-worker, a cluster's worker: stockade.service edited by deploy/systemd/worker.sed).
UNIT_DIR ?= /etc/systemd/system

install: setup
	install -D -m 0644 deploy/systemd/stockade.service $(DESTDIR)$(UNIT_DIR)/stockade.service
	sed -f deploy/systemd/worker.sed deploy/systemd/stockade.service > $(DESTDIR)$(UNIT_DIR)/stockade-worker.service
	@if [ -n "$(DESTDIR)" ]; then :; elif [ -d /run/systemd/system ]; then systemctl daemon-reload; \
	else echo "make: systemd is not running here: the unit is in place, not loaded"; fi

# deploy/image/build.sh: mmdebstrap and buildah, no daemon, no base image from a registry.
IMAGE_APT_PACKAGES := mmdebstrap buildah
FLAVOUR ?= stockade

$(STAMPS)/apt-image: Makefile $(STAMPS)/apt
	@if ! dpkg -s $(IMAGE_APT_PACKAGES) >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(IMAGE_APT_PACKAGES) >/dev/null; \
	fi
	@touch $@

image: setup $(STAMPS)/apt-image
	deploy/image/build.sh $(FLAVOUR)

toolchains: setup
	$(BIN)/stockade toolchains install --all

run: setup
	$(BIN)/stockade serve

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: setup
	$(BIN)/mypy

test: setup $(STAMPS)/apt-test $(STAMPS)/apt-image $(STAMPS)/npm-test toolchains lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

# Marked slow, so `make test` leaves it out; -s shows its figures.
soak: setup
	$(BIN)/pytest -q -p no:cacheprovider -m slow -s tests/soak

bench: setup
	$(BIN)/python bench/sandbox_overhead.py

clean:
	rm -rf $(STAMPS) $(VENV) build *.egg-info
