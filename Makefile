# The two commands a new user needs (see README):
#   make demo   train, compress, verify and benchmark a model against its float self, offline
#   make test   run the test suite
# Both create .venv and install edgesmith with its extras on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgesmith-installed

.PHONY: demo test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip "setuptools>=77"  # the SPDX license string needs it (wheels built here, no isolation)
	$(PY) -m pip install --quiet -e ".[convert,test,mcu,scale]"
	touch $(STAMP)

demo: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=3 $(VENV)/bin/edgesmith demo --out demo-out

test: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m pytest -q

clean:
	rm -rf $(VENV) demo-out .pytest_cache
