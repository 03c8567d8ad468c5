"""Why a file could not be ingested, in words a person can act on."""

from __future__ import annotations


class IngestError(Exception):
    """A file that cannot be ingested; ``reason`` is a short category, the message says more."""

    def __init__(self, path: str, reason: str, detail: str = "") -> None:
        self.path = path
        self.reason = reason
        self.detail = detail
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))

    def __reduce__(self):
        """Pickled by its fields (a parsing worker process sends it back whole)."""
        return type(self), (self.path, self.reason, self.detail)


PASSWORD_REQUIRED = "password required"
CORRUPT = "corrupt or unreadable file"
EMPTY = "empty document"
NO_TEXT_LAYER = "no text layer (scanned image)"
UNSUPPORTED = "unsupported file type"
UNSAFE = "refused as unsafe to parse"
TOO_LARGE = "too large to parse"


class IndexWriteError(OSError):
    """The index could not be written (a full disk, a read-only folder): the whole run stops, the manifest is
    not advanced, and the index stays readable as it was after the last completed run."""
