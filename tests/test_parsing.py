"""Parsing ahead in a worker process gives what parsing here gives, failures included (ingest/parsing.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from ingest.errors import IngestError
from ingest.parsing import ParseAhead, ParsedFile, Parsers
from rag.settings import Settings


def test_the_worker_parses_as_here(shared: Path, tmp_path: Path):
    names = ["en_pdflatex_4_pages.pdf", "corrupt_zero_bytes.pdf", "notes.txt", "table.csv"]
    shutil.copy(shared / "corpus" / "pdf_text" / names[0], tmp_path / names[0])
    shutil.copy(shared / "corpus" / "pdf_hard" / names[1], tmp_path / names[1])
    notes = "Plazo de entrega: treinta días.\n\nPenalización: 1% por día."
    (tmp_path / names[2]).write_text(notes, encoding="utf-8")
    (tmp_path / names[3]).write_text("Grupo,Dosis\nAdultos,500 mg\n", encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "index")
    files = [(tmp_path / name, name) for name in names]
    parsers = Parsers(settings)
    here = []
    for path, source in files:
        try:
            here.append(parsers.parse(path, source))
        except IngestError as exc:
            here.append(exc)
    with ParseAhead(parsers, settings, files, workers=1) as ahead:
        assert ahead._pool is not None  # two or more files: a worker process parses them
        ahead_results = list(ahead)
    assert len(ahead_results) == len(here)
    for mine, theirs in zip(here, ahead_results, strict=True):
        assert type(mine) is type(theirs)
        if isinstance(mine, ParsedFile):
            assert [(e.text, e.page, e.element_type) for e in theirs.elements] == \
                   [(e.text, e.page, e.element_type) for e in mine.elements]
            assert theirs.warnings == mine.warnings
        else:  # the same failure, with its fields, for the same file
            assert (theirs.path, theirs.reason, theirs.detail) == (mine.path, mine.reason, mine.detail)
    assert isinstance(ahead_results[1], IngestError) and ahead_results[1].path == names[1]
    assert any("4" in e.text or e.page == 4 for e in ahead_results[0].elements)  # all four pages came back


def test_one_file_or_no_workers_parse_here(tmp_path: Path):
    (tmp_path / "a.txt").write_text("Uno.", encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "index")
    parsers = Parsers(settings)
    with ParseAhead(parsers, settings, [(tmp_path / "a.txt", "a.txt")], workers=1) as ahead:
        assert ahead._pool is None
        (parsed,) = list(ahead)
    assert "Uno." in " ".join(e.text for e in parsed.elements)
    with ParseAhead(parsers, settings, [(tmp_path / "a.txt", "a.txt")] * 2, workers=0) as ahead:
        assert ahead._pool is None and len(list(ahead)) == 2
