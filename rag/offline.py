"""Keep every library offline: no model downloads, no telemetry.

Called by each entry point (CLI, ``create_app``) and by the model loaders before they import
Hugging Face or Chroma code, so that a library never reaches the network on its own.
"""

from __future__ import annotations

import os

# Each variable is read by a library we use (or one of theirs) at import or first use.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",  # huggingface_hub: never contact the Hub
    "TRANSFORMERS_OFFLINE": "1",  # transformers: load from disk only
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "ANONYMIZED_TELEMETRY": "False",  # chromadb's posthog telemetry
    # ONNX Runtime 1.29+ on Linux/macOS: its 1DS telemetry uploader (DNS lookups from its own threads, seen in
    # tests/test_offline_trace.py); read once, when the runtime starts, so set before it is imported.
    "ORT_DISABLE_TELEMETRY": "1",
    "SCARF_NO_ANALYTICS": "true",  # unstructured's scarf ping
    "DO_NOT_TRACK": "true",  # unstructured and others honouring the DNT convention
    "UNSTRUCTURED_DISABLE_NOTICE": "1",  # unstructured's advertising log line
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
}


def ensure_offline() -> None:
    """Set the offline/telemetry variables unless the user set them explicitly."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
