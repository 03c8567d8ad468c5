"""Uploaded files: safe names, size limit, and the type checked by content as well as by name."""

from __future__ import annotations

import re
import unicodedata
import zipfile
from io import BytesIO
from pathlib import Path, PurePosixPath, PureWindowsPath

from ingest.pipeline import SUPPORTED_SUFFIXES
from ingest.safety import UnsafeFile, check_office_archive

_ZIP_MEMBERS = {".docx": "word/", ".pptx": "ppt/", ".xlsx": "xl/"}
_TEXT_SUFFIXES = {".csv", ".tsv", ".html", ".htm", ".md", ".markdown", ".eml", ".txt", ".text"}


class UploadError(ValueError):
    """An upload we refuse; the message says why, in words a person can act on."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def safe_name(name: str) -> str:
    """The bare file name, without folders (either separator), control characters or leading dots."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name
    base = unicodedata.normalize("NFC", base)
    base = re.sub(r"[^\w.\- ()áéíóúñüÁÉÍÓÚÑÜ]", "_", base).strip(" .")
    if not base or base in {".", ".."}:
        raise UploadError("file name is empty or invalid")
    return base[:200]


def check_content(name: str, data: bytes, max_bytes: int) -> str:
    """Validate an upload; returns its suffix."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UploadError(f"{name}: unsupported file type {suffix or '(none)'}; "
                          f"supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}", 415)
    if len(data) > max_bytes:
        raise UploadError(f"{name}: {len(data) / 1e6:.1f} MB is over the upload limit of "
                          f"{max_bytes / 1e6:.1f} MB (RAG_MAX_UPLOAD_MB)", 413)
    if not data:
        raise UploadError(f"{name}: the file is empty")
    if suffix == ".pdf" and not data.lstrip()[:5].startswith(b"%PDF-"):
        raise UploadError(f"{name}: named .pdf but the content is not a PDF", 415)
    if suffix in _ZIP_MEMBERS:
        try:
            members = zipfile.ZipFile(BytesIO(data)).namelist()
        except zipfile.BadZipFile:
            raise UploadError(f"{name}: named {suffix} but the content is not an Office document", 415) from None
        if not any(m.startswith(_ZIP_MEMBERS[suffix]) for m in members):
            raise UploadError(f"{name}: named {suffix} but the content is another kind of Office file", 415)
        try:
            check_office_archive(name, data)
        except UnsafeFile as exc:
            raise UploadError(str(exc), 422) from None
    if suffix in _TEXT_SUFFIXES and b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UploadError(f"{name}: named {suffix} but the content is binary", 415)
    return suffix


def store(folder: Path, name: str, data: bytes) -> Path:
    """Write into ``folder`` only; never follows a name outside it."""
    folder.mkdir(parents=True, exist_ok=True)
    target = (folder / safe_name(name)).resolve()
    if target.parent != folder.resolve():
        raise UploadError(f"{name}: invalid file name")
    tmp = target.with_name(f".{target.name}.part")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target
