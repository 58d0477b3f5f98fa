"""The parts depend downward only, and never on another part's private names (read from the source, no import)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Lowest first: a part may import the parts listed before it, never those after it.
LAYERS = ["core", "data", "encoders", "index", "graph", "recommender", "evaluation", "plugin", "api", "tagatlas"]
FOLDER = {name: ROOT / name for name in LAYERS}


def imports_of(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) of every `tagatlas…` import in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tagatlas":
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == "tagatlas")
    return found


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FOLDER else "tagatlas"


def violations() -> list[str]:
    found = []
    for part in LAYERS:
        for path in sorted(FOLDER[part].rglob("*.py")):
            for line, module, names in imports_of(path):
                target = part_of(module)
                if target == part:
                    continue
                where = f"{path.relative_to(FOLDER[part].parent)}:{line} imports {module}"
                if LAYERS.index(target) > LAYERS.index(part):
                    found.append(f"{where}: upward ({part} → {target})")
                private = [seg for seg in module.split(".")[1:] if seg.startswith("_")] + [n for n in names if n.startswith("_")
                                                                                         and not n.startswith("__")]
                if private:
                    found.append(f"{where}: private name {', '.join(private)}")
    return found


def test_parts_depend_downward_and_publicly():
    assert violations() == []


def test_the_check_sees_an_upward_and_a_private_import(tmp_path, monkeypatch):
    """The check itself can fail: a fake `index` part importing the recommender and a private module is caught."""
    fake = tmp_path / "index"
    fake.mkdir()
    (fake / "bad.py").write_text("from tagatlas.recommender import TagAtlas\nfrom tagatlas.core._secret import x\n")
    monkeypatch.setitem(FOLDER, "index", fake)
    found = violations()
    assert any("upward (index → recommender)" in v for v in found)
    assert any("private name _secret" in v for v in found)


def test_benchmarks_use_public_names_only():
    bad = [f"{p.name}:{line} {module} {names}" for p in sorted((ROOT / "benchmarks").glob("*.py")) for line, module, names in imports_of(p)
           if any(seg.startswith("_") for seg in module.split(".")) or any(n.startswith("_") and not n.startswith("__") for n in names)]
    assert bad == []
