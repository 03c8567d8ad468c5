"""Files built to hurt the parser: Office zip bombs and XML entity expansion ("billion laughs"), refused
before any parser opens them, with a reason that names the file."""

from __future__ import annotations

import re
import zipfile
from io import BytesIO
from pathlib import Path

ZIP_SUFFIXES = frozenset({".docx", ".pptx", ".xlsx"})
MAX_UNCOMPRESSED = 512 * 1024 * 1024  # more text than any real Office document holds
MAX_RATIO = 200  # text compresses 5-20 times; 200 and more is a bomb
_DOCTYPE = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_SCAN_BYTES = 64 * 1024  # a DTD sits before the root element


class UnsafeFile(ValueError):
    """A file refused as dangerous to parse; the message says why."""


def check_office_archive(source: str, data: bytes | Path) -> None:
    """Raise ``UnsafeFile`` for a DOCX/PPTX/XLSX that expands past ``MAX_UNCOMPRESSED`` or ``MAX_RATIO`` times
    its size, or whose XML declares a DTD or entities (Office never writes them)."""
    raw = data.read_bytes() if isinstance(data, Path) else data
    try:
        archive = zipfile.ZipFile(BytesIO(raw))
    except zipfile.BadZipFile:
        return  # not a zip at all: the parser reports it as corrupt
    with archive:
        members = archive.infolist()
        expanded = sum(m.file_size for m in members)
        if expanded > MAX_UNCOMPRESSED or expanded > MAX_RATIO * max(len(raw), 1):
            raise UnsafeFile(f"{source}: expands to {expanded / 1e6:.0f} MB from {len(raw) / 1e6:.1f} MB "
                             "(a zip bomb?); refused")
        for member in members:
            if member.filename.endswith((".xml", ".rels")):
                with archive.open(member) as fh:
                    if _DOCTYPE.search(fh.read(_SCAN_BYTES)):
                        raise UnsafeFile(f"{source}: {member.filename} declares XML entities (an entity-expansion "
                                         "attack?); refused")
