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


# The core parts stay readable: a module past ~400 lines or a function past cyclomatic complexity ~15 is split.
SMALL_PARTS, MAX_LINES, MAX_COMPLEXITY = ("recommender", "api", "index"), 430, 15


def oversized(parts=SMALL_PARTS, root=ROOT) -> list[str]:
    from radon.complexity import cc_visit

    found = []
    for part in parts:
        for path in sorted((root / part).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            where = path.relative_to(root)
            if source.count("\n") > MAX_LINES:
                found.append(f"{where}: {source.count(chr(10))} lines")
            for block in cc_visit(source):
                if block.complexity > MAX_COMPLEXITY:
                    found.append(f"{where}:{block.lineno} {block.name}: cyclomatic complexity {block.complexity}")
    return found


def test_core_modules_stay_small_and_simple():
    assert oversized() == []


def test_the_size_check_sees_a_long_module_and_a_tangled_function(tmp_path):
    (tmp_path / "recommender").mkdir()
    branches = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(MAX_COMPLEXITY + 1))
    (tmp_path / "recommender" / "tangled.py").write_text(f"def tangled(x):\n{branches}" + "\n" * MAX_LINES)
    found = oversized(("recommender",), tmp_path)
    assert any("lines" in f for f in found) and any("tangled: cyclomatic complexity" in f for f in found)
