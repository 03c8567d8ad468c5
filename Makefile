# Two commands do all set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
RAG := $(VENV)/bin/rag
INDEX ?= .rag-index
QUESTION ?= ¿Cuál es la dosis máxima diaria de paracetamol por vía oral en adultos?
# llama-cpp-python compiles from source; use both cores.
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2

.PHONY: run test install serve bench clean data system-deps

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# CPU build of torch first, pinned, so nothing pulls a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(RAG) ingest data --index $(INDEX)
	$(RAG) ask "$(QUESTION)" --index $(INDEX)
	$(RAG) serve --index $(INDEX)

serve: install
	$(RAG) serve --index $(INDEX)

# The offline tests trace connect() calls (strace) inside a network namespace without network (unshare, ip).
system-deps:
	@missing=""; \
	command -v strace >/dev/null || missing="$$missing strace"; \
	command -v unshare >/dev/null || missing="$$missing util-linux"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "note: Debian packages$$missing are missing and we are not root: the offline-trace tests will skip"; \
	  fi; \
	fi

test: install system-deps
	$(PY) -m pytest

data: install
	$(PY) scripts/make_demo_data.py

clean:
	rm -rf $(VENV) $(INDEX) .pytest_cache
