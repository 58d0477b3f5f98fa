"""Helpers shared by the benchmark scripts: the machine description and the docs block they rewrite."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"


def answer_row(errors_km, radii: tuple[int, ...] = (25, 161)) -> dict[str, float]:
    """Acc@r for each radius and the median error of one answer per query (`errors_km`: km from the truth)."""
    import numpy as np

    errors_km = np.asarray(errors_km, dtype=float)
    return {**{f"acc_{r}": float(np.mean(errors_km <= r)) for r in radii}, "median_km": float(np.median(errors_km))}


def shown(path: Path) -> str:
    """A path as the docs name it: relative to the folder holding the repository and ../shared when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO.parent)) if path.is_relative_to(REPO.parent) else str(path)


def data_file(root: Path, name: str) -> Path:
    """A dataset's canonical posts file under `root` (plain or gzipped)."""
    for candidate in (root / name / "posts.jsonl", root / name / "posts.jsonl.gz"):
        if candidate.exists():
            return candidate
    raise SystemExit(f"--dataset {name}: no posts.jsonl(.gz) under {root / name}")


NESTED_SALT = "refit-check"  # which validation users the nested checks hold out: fixed, so reruns and scripts compare the same users


def nested_validation(path: Path) -> tuple[list, list]:
    """(posts to train on, held-out validation users' posts) of a posts file: of the training users `tagatlas train`
    would read, the fit users plus half of the validation users, and the other half (chosen by NESTED_SALT). The
    held-out test users are never read past the split."""
    from tagatlas.data.split import split_users
    from tagatlas.evaluation import training_split
    from tagatlas.recommender.training import validation_split

    parts = validation_split(training_split([path], skip_invalid=True).train)
    halves = split_users(parts["val"], {"v1": 0.5, "v2": 0.5}, salt=NESTED_SALT)
    return parts["fit"] + halves["v1"], halves["v2"]


def nested_figures(result: dict) -> dict:
    """The row a nested check reports, from an evaluation result."""
    geo, tagged = result["geo"]["tagatlas"], result["geo_with_tags"]["tagatlas"]
    return {"acc_161": geo["acc_at_km"]["161"], "acc_25": geo["acc_at_km"]["25"], "median_km": geo["median_km"],
            "tagged_acc_161": tagged["acc_at_km"]["161"], "tagged_median_km": tagged["median_km"],
            "f1_at_5": result["hashtags"]["tagatlas"].get("f1_at_5")}


def nested_config_check(path: Path, configs: dict, first: str, command: str, show_places: bool = False) -> str:
    """Train one model per named `ModelConfig` on the fit users plus half of the validation users, evaluate each on
    the other half with `tagatlas evaluate`'s protocol, and return the block: the data line and one row per config
    (`first` heads the first column; `show_places`: a column of each model's place classes). The held-out test users
    are never read past the split."""
    from tagatlas.evaluation.runner import evaluate
    from tagatlas.recommender import TagAtlas

    train, held = nested_validation(path)
    rows, n_queries = {}, 0
    for name, config in configs.items():
        started = time.perf_counter()
        model = TagAtlas(config).fit(train, progress=False)
        trained = time.perf_counter() - started
        result = evaluate(model, held, progress=False)
        rows[name] = {**nested_figures(result), "train_s": trained, "places": len(model.geolocator_)}
        n_queries = result["details"]["geo_queries"]
        print(path.parent.name, name, rows[name], flush=True)
    f1 = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    places = lambda r: f" {r['places']} |" if show_places else ""  # noqa: E731
    return (f"{provenance(command)}\n\n"
            f"Data: `{shown(path)}`, training users only: trained on {len(train)} posts (the fit users and half of the validation users), "
            f"evaluated on the other half of the validation users ({len({p.user_key for p in held})} users, "
            f"{n_queries} located queries).\n\n"
            f"| {first} |{' place classes |' if show_places else ''} Acc@161 | Acc@25 | median km | with tags: Acc@161 | "
            f"with tags: median km | F1@5 | train s |\n|---|---|---|---|---|---|---|---|{'---|' if show_places else ''}\n"
            + "\n".join(f"| {name} |{places(r)} {r['acc_161']:.3f} | {r['acc_25']:.3f} | {r['median_km']:.0f} | {r['tagged_acc_161']:.3f} | "
                        f"{r['tagged_median_km']:.0f} | {f1(r['f1_at_5'])} | {r['train_s']:.0f} |" for name, r in rows.items()))


def machine() -> str:
    """Cores, CPU model, GPU (if any) and library versions, for the line above every table."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} cores ({cpu}), {gpu}, Python {platform.python_version()}, torch {torch.__version__}"


def provenance(command: str) -> str:
    """'Command: … (commit …, date). Machine: ….' — the header every generated block starts with."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    return f"Command: `{command}` (commit {commit}, {time.strftime('%Y-%m-%d')}). Machine: {machine()}."


def seconds_table(what: str, seconds: dict[str, float]) -> str:
    """A markdown table of the seconds each way of running `what` took, in the order given."""
    return f"| {what} | seconds |\n|---|---|\n" + "\n".join(f"| {name} | {s:.1f} |" for name, s in seconds.items())


def dataset_arguments(description: str) -> argparse.ArgumentParser:
    """The arguments of a script that checks one dataset: --dataset, --data-root and --no-write."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--dataset", required=True, help="a dataset folder under --data-root")
    ap.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--no-write", action="store_true", help="print the block only")
    return ap


def emit_block(name: str, body: str, heading: str, no_write: bool = False) -> None:
    """Print the block, or write it into docs/benchmarks.md (the section's heading once, above its first block)."""
    if no_write:
        print(body)
    else:
        print(write_block(name, body, heading=None if heading in DOC.read_text() else heading))


def write_block(name: str, body: str, doc: Path = DOC, heading: str | None = None) -> str:
    """Replace the text between `<!-- name:begin -->` and `<!-- name:end -->` in `doc` (appended under
    `heading` when absent); other sections are left as they are."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{body}\n{end}"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if begin in text:
        text = text.split(begin)[0] + block + text.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + (f"{heading}\n\n" if heading else "") + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    tmp = doc.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, doc)
    return block
