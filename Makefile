# NeuroTriage Node — `make run` starts the node, `make test` runs the checks.
# Both set up .venv from nothing on a fresh machine and are quick when it exists.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
EXTRAS := codecs,ml,synth,dev
RUN_ARGS ?= --allow STORESCU --allow ECHOSCU
PYTEST_ARGS ?=

.PHONY: run test lint typecheck unit sysdeps services venv demo-model demo-eval bench clean

run: venv
	$(BIN)/dicom-node -v serve $(RUN_ARGS)

test: sysdeps services venv lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check dicom_node pipeline training tests bench
	$(BIN)/ruff format --check dicom_node pipeline training tests bench

typecheck: venv
	$(BIN)/mypy

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: a local CPU build is found on these machines.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	touch $(STAMP)

# Real peers and validators used by the tests (Debian packages).
SYSTEM_TOOLS := storescu storescp echoscu dciodvfy Orthanc java
sysdeps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	test -f /usr/share/java/pixelmed.jar || missing="$$missing pixelmed"; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages for:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
			dcmtk dicom3tools pixelmed-apps libpixelmed-java orthanc default-jre-headless; \
	fi

# Redis and PostgreSQL run on these machines; start them if they are down.
services:
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || \
		redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
			--logfile /tmp/redis-ci.log || true
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || \
		(pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql 2>/dev/null | head -1) main start 2>/dev/null || true)

# Train the demo bundle from synthetic studies (<= 60 min on 2 CPU cores is the target)
# and install it where `make run` finds it. Retrain only when the model changes.
DEMO_BUILD := build/demo
demo-model: venv
	$(BIN)/python -m training.demo --out $(DEMO_BUILD) $(DEMO_ARGS)
	rm -rf deploy/models/demo && mkdir -p deploy/models && cp -r $(DEMO_BUILD)/bundle deploy/models/demo

# Evaluate the installed demo bundle on a fresh held-out set: 300 new studies of the
# site kept out of training (seed 1000, never used for training or for any choice).
FRESH_BUILD := build/fresh-philips_c
demo-eval: venv
	$(BIN)/dicom-node-train synth --out $(FRESH_BUILD)/cache --studies 300 --seed 1000 \
		--site philips_c --test-site philips_c --size small --workers 2 \
		--prepared T2,FLAIR,DWI,T1C --preprocess-like deploy/models/demo
	$(BIN)/dicom-node-train evaluate --bundle deploy/models/demo --cache $(FRESH_BUILD)/cache \
		--out $(FRESH_BUILD)/evaluation --split test --title "demo bundle: a fresh held-out set (philips_c, 300 studies, seed 1000, used for no decision)"

bench: venv
	@echo "benchmarks: $(BIN)/python bench/<name>.py (see README)"

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
