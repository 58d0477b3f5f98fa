"""One settings object reads every environment variable; README's table is the object's own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tagatlas.core.settings import SettingsError, load_settings, settings_table

ROOT = Path(__file__).resolve().parent.parent


def test_readme_lists_exactly_the_settings():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- settings-table:.*?-->\n(.*?)\n<!-- /settings-table -->", readme, re.S)
    assert block and block.group(1).strip() == settings_table()


@pytest.mark.parametrize("name, value", [("TAGATLAS_RATE_LIMIT", "0"), ("TAGATLAS_RATE_BURST", "lots"), ("TAGATLAS_ENCODER_THREADS", "0"),
                                         ("TAGATLAS_SEARCH_BACKEND", "elastic"), ("TAGATLAS_OPENSEARCH_INDEX", "")])
def test_bad_values_are_refused_with_the_variables_name(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_values_and_overrides(monkeypatch, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("k2=bob\n# comment\n")
    monkeypatch.setenv("TAGATLAS_IMAGE_URL_PREFIXES", " http://a.example/ ,,http://b.example/x/")
    monkeypatch.setenv("TAGATLAS_API_KEY_FILE", str(keys))
    monkeypatch.setenv("OPENSEARCH_URL", "https://localhost:9200")
    s = load_settings(encoder_threads=3)
    assert s.image_prefixes == ["http://a.example/", "http://b.example/x/"] and s.encoder_threads == 3
    assert s.opensearch_url == "https://localhost:9200" and "k2=bob" in s.key_entries()
    monkeypatch.setenv("TAGATLAS_API_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="TAGATLAS_API_KEY_FILE"):
        load_settings().key_entries()


def test_no_module_reads_the_environment_but_the_settings():
    """Product code reads os.environ only in core (settings, and the BLAS variable that must precede numpy)."""
    allowed = {ROOT / "core" / "settings.py", ROOT / "core" / "native.py", ROOT / "encoders" / "cache.py"}  # cache: XDG_CACHE_HOME
    readers = [p for part in ("core", "data", "encoders", "index", "graph", "recommender", "evaluation", "plugin", "api", "tagatlas")
               for p in (ROOT / part).rglob("*.py") if "os.environ" in p.read_text(encoding="utf-8") and p not in allowed]
    assert readers == []


def test_the_embedding_cache_folder_comes_from_the_settings(monkeypatch, tmp_path):
    from tagatlas.encoders.cache import default_cache_path

    monkeypatch.setenv("TAGATLAS_CACHE_DIR", str(tmp_path / "vectors"))
    assert default_cache_path() == tmp_path / "vectors" / "embeddings.sqlite"
    monkeypatch.delenv("TAGATLAS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_path() == tmp_path / "xdg" / "tagatlas" / "embeddings.sqlite"
