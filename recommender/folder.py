"""A model folder: model.json with a manifest of the parts it holds (as sentence-transformers' modules.json), each
part in its own file or subfolder, written atomically as a whole (a crash leaves the previous folder, or none)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tagatlas.core import __version__, fsync_dir, write_text_atomic
from tagatlas.recommender.weights import WEIGHTS_FILE

FORMAT_VERSION = 3  # 3: the geolocator and the hashtag recommender in their own subfolders (2 kept their state in
# model.json and the tag matcher in tags/; 1 pickled its weights in weights.pt)


def file_fingerprint(path: Path) -> str:
    """A short content hash naming a model version (written into enriched documents and API answers)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


class ModelFolderError(ValueError):
    """A model folder is missing, incomplete, damaged or from an incompatible version."""


@dataclass(frozen=True)
class PartSpec:
    """One part of a model folder: where it lies inside the folder, the version of its format, whether required."""

    path: str
    version: int
    required: bool = True


# The parts a model folder may name in model.json's "parts", as sentence-transformers' modules.json names modules.
PARTS: dict[str, PartSpec] = {
    "weights": PartSpec(WEIGHTS_FILE, 1), "index": PartSpec("index.faiss", 1), "store": PartSpec("store.sqlite", 1),
    "geolocator": PartSpec("geolocator", 1), "hashtags": PartSpec("hashtags", 1),
    "graph": PartSpec("graph", 1, required=False), "imputer": PartSpec("imputer", 1, required=False),
}


def read_manifest(folder: Path) -> tuple[dict, dict[str, Path]]:
    """model.json and the path of each part it names, after refusing other formats, unknown parts, newer part
    versions and missing files, each with a message saying what to do."""
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: not a model folder (run `tagatlas train --out {folder}` first)")
    try:
        state = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFolderError(f"{folder}: incomplete model folder, missing model.json") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFolderError(f"{folder}/model.json: unreadable ({exc})") from exc
    retrain = f"retrain it with `tagatlas train --data POSTS --out {folder}`"
    found = state.get("format_version") if isinstance(state, dict) else None
    if found != FORMAT_VERSION:
        older = {1: " (format 1 pickled its weights in weights.pt, which can run code when opened)",
                 2: " (format 2 kept places and tags in model.json; this one saves each part in its own subfolder)"}.get(found, "") if isinstance(found, int) else ""
        raise ModelFolderError(f"{folder}: model format {found} is not {FORMAT_VERSION}{older}; {retrain}")
    named = state.get("parts")
    if not isinstance(named, dict):
        raise ModelFolderError(f"{folder}/model.json: no \"parts\" manifest; {retrain}")
    unknown = sorted(set(named) - set(PARTS))
    if unknown:
        raise ModelFolderError(f"{folder}/model.json names unknown part(s) {', '.join(map(repr, unknown))} (this TagAtlas "
                               f"{__version__} knows {', '.join(PARTS)}): written by a newer TagAtlas? Upgrade, or {retrain}")
    paths: dict[str, Path] = {}
    for name, spec in PARTS.items():
        if named.get(name) is None:
            if spec.required:
                raise ModelFolderError(f"{folder}/model.json: the required part {name!r} is not named; {retrain}")
            continue
        paths[name] = _part_path(folder, name, spec, named[name])
    return state, paths


def _part_path(folder: Path, name: str, spec: PartSpec, entry) -> Path:
    """Where a part named in the manifest lies, after checking its entry, version and file."""
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not isinstance(entry.get("version"), int):
        raise ModelFolderError(f"{folder}/model.json: part {name!r} needs a path and a version, got {entry!r}")
    if entry["version"] > spec.version:
        raise ModelFolderError(f"{folder}: part {name!r} is version {entry['version']}, this TagAtlas reads up to {spec.version}")
    path = (folder / entry["path"]).resolve()
    if folder.resolve() not in path.parents:
        raise ModelFolderError(f"{folder}/model.json: part {name!r} points outside the folder ({entry['path']!r})")
    if not path.exists():
        raise ModelFolderError(f"{folder}: incomplete model folder, missing {entry['path']} (part {name!r})")
    return path


def load_part(folder: Path, parts: dict[str, Path], name: str, load):
    """A part loaded by `load(path)`; a damaged one is a ModelFolderError naming it."""
    try:
        return load(parts[name])
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:  # RuntimeError: FAISS reading a damaged index
        raise ModelFolderError(f"{folder}/{parts[name].name}: unreadable part {name!r} ({type(exc).__name__}: {exc})") from exc


def manifest_of(names: list[str]) -> dict[str, dict]:
    """The "parts" entry of model.json for the parts named."""
    return {name: {"path": PARTS[name].path, "version": PARTS[name].version} for name in names}


def write_folder(folder: str | os.PathLike, write_parts: Callable[[Path], dict]) -> Path:
    """Build the folder in a temporary sibling (`write_parts(tmp)` writes the parts and returns model.json's
    content), fsync it, then swap it in place of `folder`."""
    folder = Path(folder).resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        state = write_parts(tmp)
        write_text_atomic(tmp / "model.json", json.dumps(state, ensure_ascii=False))
        fsync_dir(tmp)
        old = None
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            os.replace(folder, old)
        os.replace(tmp, folder)
        fsync_dir(folder.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


# What TagAtlas itself writes into a model folder (beside the parts) and into a training checkpoint folder: the only
# files it may replace or remove there.
MODEL_FOLDER_EXTRAS = {"model.json", "index.json", "store.sqlite-wal", "store.sqlite-shm", "store.sqlite-journal"}
CHECKPOINT_FILES = {"embeddings.sqlite", "embeddings.sqlite-wal", "embeddings.sqlite-shm", "embeddings.sqlite-journal",
                    "head-fit.pt", "head-refit.pt"}


def _foreign(folder: Path, ours: set[str]) -> list[str]:
    """Entries of `folder` TagAtlas did not write (its atomic writes' temporary files count as its own)."""
    return sorted(e.name for e in folder.iterdir() if e.name not in ours and not (e.name.startswith(".") and e.name.endswith(".tmp")))


def check_model_out(out: str | os.PathLike, overwrite: bool, inputs=()) -> None:
    """Refuse a training output that would destroy what is not a model: an existing file, a folder holding other
    files, an input file; an existing model folder only with `overwrite` (and only when it holds nothing else)."""
    out = Path(out)
    for source in inputs:
        if Path(source).exists() and out.exists() and (out.resolve() == Path(source).resolve() or out.resolve() in Path(source).resolve().parents):
            raise ModelFolderError(f"--out {out}: holds the training data {source}; write the model elsewhere")
    if not out.exists():
        return
    if not out.is_dir():
        raise ModelFolderError(f"--out {out}: exists and is not a folder; give a new folder")
    if not any(out.iterdir()):
        return
    if not (out / "model.json").is_file():
        raise ModelFolderError(f"--out {out}: a folder that is not a TagAtlas model folder and not empty; give a new folder")
    foreign = _foreign(out, {spec.path for spec in PARTS.values()} | MODEL_FOLDER_EXTRAS)
    if foreign:
        raise ModelFolderError(f"--out {out}: a model folder that also holds files TagAtlas did not write ({', '.join(foreign[:5])}); "
                               "move them or give a new folder")
    if not overwrite:
        raise ModelFolderError(f"--out {out}: a model folder exists there; give --overwrite to replace it")


def check_checkpoint(folder: str | os.PathLike) -> None:
    """Refuse a checkpoint folder holding files TagAtlas did not write (they would be removed with it)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ModelFolderError(f"--checkpoint-dir {folder}: exists and is not a folder")
    if folder.is_dir():
        foreign = _foreign(folder, CHECKPOINT_FILES)
        if foreign:
            raise ModelFolderError(f"--checkpoint-dir {folder}: holds files TagAtlas did not write ({', '.join(foreign[:5])}); "
                                   "give an empty or new folder")


def remove_checkpoint(folder: str | os.PathLike) -> None:
    """Remove the files a training checkpoint wrote, then the folder if nothing else is left in it."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for name in CHECKPOINT_FILES:
        (folder / name).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass  # something else is in it: not ours to remove
