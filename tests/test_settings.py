import pytest
from pydantic import ValidationError

from rag.settings import Settings


def test_environment_and_config_file(tmp_path, monkeypatch):
    config = tmp_path / "rag.toml"
    config.write_text('top_k = 7\nchunker = "fixed"\n', encoding="utf-8")
    monkeypatch.setenv("RAG_CHUNKER", "sentence-window")
    settings = Settings.load(config)
    assert settings.top_k == 7  # from the file
    assert settings.chunker == "sentence-window"  # environment beats the file
    assert Settings.load(config, top_k=3).top_k == 3  # explicit overrides beat both


def test_bounds_and_missing_file(tmp_path):
    with pytest.raises(ValidationError, match="top_k"):
        Settings(top_k=0)
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        Settings.load(tmp_path / "nope.toml")
    assert Settings().with_overrides(top_k=9, seed=None).top_k == 9
