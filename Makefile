# The README's two commands are `make demo` and `make test`; both bootstrap .venv when it is missing or stale.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck bench clean readme-images readme-perf

$(STAMP): pyproject.toml tools/bootstrap.sh tools/test-oracles.txt
	sh tools/bootstrap.sh

demo: $(STAMP)
	$(VENV)/bin/chromaflow info
	$(PY) tools/demo.py

LINTED := $(wildcard core filters plugins src tests tools benchmarks examples)
TYPECHECK := $(PY) tools/typecheck.py

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(TYPECHECK)

# mypy alone over the package as installed and the Blender/OBS host scripts (tools/typecheck.py says why a view).
typecheck: $(STAMP)
	$(TYPECHECK)

test: lint $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/run_all.py
	$(PY) tools/perf_table.py

# The README's performance tables from benchmarks/results/*.json (tests check they are current).
readme-perf: $(STAMP)
	$(PY) tools/perf_table.py

# The README's pictures (docs/images/*.webp) from scikit-image's freely licensed samples; see tools/readme_images.py.
readme-images: $(STAMP)
	$(PY) tools/readme_images.py
	$(PY) tools/smoothing_strip.py

clean:
	rm -rf $(VENV) .venv-bpy build *.egg-info demo-output
