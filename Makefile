# facegate: every target creates and uses its own virtual environment in .venv.
#   make serve   build the models if missing, start the embedded Triton and the server (port 3000)
#   make test    ruff, then the whole test suite (unit + integration against the real tritonserver)
#   make models  build model_repository/ from the pinned weights
#   make bench   load benchmark, baselines, model sweeps (see benchmarks/README.md)
#   make bench-quick  image_verification c16 against the ONNX Runtime baselines, ~3 min

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
MODELS := model_repository/embedded/.built
MODEL_SOURCES := $(wildcard model_repository/*.py)
PYTEST_ARGS ?=

.PHONY: serve test models bench bench-quick clean-models venv

venv: $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(MODELS): $(INSTALLED) $(MODEL_SOURCES)
	$(PY) -m model_repository.build
	touch $@

models: $(MODELS)

# make serve alone uses the SenseID manual's published sample key and IV, so the manual's
# sample client works out of the box; the server logs that this is for development only.
serve: export FACEGATE_AES_KEY ?= dcbbad6765e14139a07d34b92292a672
serve: export FACEGATE_AES_IV ?= df25d188a061
serve: export FACEGATE_ALLOW_LEGACY_IV ?= true
serve: $(MODELS)
	$(PY) -m frontend

# The session store's tests run a real redis-server and the capture page's a real chromium
# (Debian's packages): installed here when missing and root is at hand, else those tests skip
# (under CI=true they fail instead).
SYSTEM_TOOLS := redis-server:redis-server chromium:chromium

test: $(MODELS)
	@for tool in $(SYSTEM_TOOLS); do command -v $${tool%%:*} >/dev/null || \
		(apt-get install -y $${tool##*:} || (apt-get update && apt-get install -y $${tool##*:})) \
		|| echo "make test: $${tool%%:*} is missing and cannot be installed here"; done
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

# wrk (the load generator) is Debian's package: installed here when missing (needs root).
bench: $(MODELS)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	command -v wrk >/dev/null || (apt-get install -y wrk || (apt-get update && apt-get install -y wrk))
	$(PY) -m benchmarks.load
	$(PY) -m benchmarks.load.overload
	$(PY) -m benchmarks.load.cost

# about 3 minutes: image_verification at concurrency 16 against the two ONNX Runtime baselines
bench-quick: $(MODELS)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	command -v wrk >/dev/null || (apt-get install -y wrk || (apt-get update && apt-get install -y wrk))
	$(PY) -m benchmarks.quick

clean-models:
	rm -rf model_repository/embedded model_repository/native/*/1
