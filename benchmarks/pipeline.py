"""Reproduce the end-to-end results table in docs/benchmarks.md.

For every dataset in the data root: train on 90 % of its users (hash split, seed 0), evaluate on the
held-out 10 % with the evaluation contract, and write its tables with data, command and machine into its own
block (`pipeline-<dataset>`), so datasets can be re-run one at a time.

    .venv/bin/python benchmarks/pipeline.py [--data-root ../shared/data] [--datasets NAME ...] [--out runs/bench] [--doc docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOC, REPO, provenance, write_block  # noqa: E402


def table(result: dict) -> str:
    g, h = result["geo"], result["hashtags"]
    rows = ["| geolocation | acc_place | Acc@1 | Acc@25 | **Acc@161** | Acc@750 | Acc@2500 | median km | mean km |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name, m in [("**TagAtlas**", g["tagatlas"])] + list(g["baselines"].items()):
        a = m["acc_at_km"]
        rows.append(f"| {name} | {m['acc_place']:.3f} | {a['1']:.3f} | {a['25']:.3f} | {a['161']:.3f} | {a['750']:.3f} | "
                    f"{a['2500']:.3f} | {m['median_km']:.0f} | {m['mean_km']:.0f} |")
    f = lambda v: f"{v:.3f}" if isinstance(v, (int, float)) else "–"  # noqa: E731
    rows += ["", f"| hashtags (n={h['tagatlas']['n']}) | **F1@5** | P@5 | R@5 | HR@5 | MRR | new-tag HR@10 |", "|---|---|---|---|---|---|---|"]
    named = [("**TagAtlas**", h["tagatlas"])] + [(f"TagAtlas, always 5 tags ({k})", v) for k, v in h.get("variants", {}).items()]
    for name, m in named + list(h["baselines"].items()):
        rows.append(f"| {name} | {f(m['f1_at_5'])} | {f(m['precision_at_5'])} | {f(m['recall_at_5'])} | {f(m['hr_at_5'])} | "
                    f"{f(m['mrr'])} | {f(m['new_tag_hr_at_10'])} |")
    return "\n".join(rows)


def ingest_table(result: dict) -> str:
    """`geo_with_tags` (the same located queries with their hashtags as input) and, with photos, Galaxy's rows."""
    rows = ["| geolocation, hashtags as input | Acc@25 | **Acc@161** | median km |", "|---|---|---|---|"]
    with_tags = result.get("geo_with_tags")
    if with_tags:
        for name, m in [("**TagAtlas**", with_tags["tagatlas"])] + list(with_tags["baselines"].items()):
            rows.append(f"| {name} | {m['acc_at_km']['25']:.3f} | {m['acc_at_km']['161']:.3f} | {m['median_km']:.0f} |")
    variants = result.get("variants") or {}
    if variants:
        rows += ["", "| Galaxy's rows (hashtags masked) | Acc@25 | **Acc@161** | median km |", "|---|---|---|---|"]
        named = [("TagAtlas, text only", variants.get("geo_text_only")), ("TagAtlas, image only", variants.get("geo_image_only")),
                 ("**TagAtlas, fused**", result["geo"]["tagatlas"])]
        for name, m in named:
            if m:
                rows.append(f"| {name} | {m['acc_at_km']['25']:.3f} | {m['acc_at_km']['161']:.3f} | {m['median_km']:.0f} |")
    return "\n".join(rows) if with_tags or variants else ""


def source_weights(state: dict) -> str:
    """The plug-in evidence sources and the weights validation chose for them."""
    fusion = state["fusion"]
    named = state["config"].get("evidence", [])
    if not named:
        return ""
    tagged = fusion.get("source_place_tagged", {})
    parts = [f"{n} (places {fusion.get('source_place', {}).get(n, 0.0):g}"
             + (f", places for posts with hashtags {tagged[n]:g}" if n in tagged else "")
             + f", tags {fusion.get('source_tags', {}).get(n, 0.0):g})" for n in named]
    return "Evidence plug-ins and their weights chosen on validation users: " + ", ".join(parts) + "."


def coordinate_rule(state: dict) -> str:
    """Where validation chose to take the coordinates from."""
    fusion = state["fusion"]
    named = fusion.get("coordinate_sources") or []
    where = "the neighbours in the chosen place" if fusion.get("neighbour_coords", True) else "the chosen place itself"
    return (f"Coordinates chosen on validation users: {where}"
            + (f", or the point a plug-in names ({', '.join(named)}: the city the post writes, the user's past post) where it "
               "lies in the chosen area." if named else "; no plug-in's named point was used for coordinates.") + named_place(fusion))


def named_place(fusion: dict) -> str:
    """Whether validation reports a city the post names outside the decided area instead of the place (named_place.py)."""
    def rule(suffix: str) -> str:
        below, prob = fusion.get(f"named_place_below{suffix}", 0.0), fusion.get(f"named_place_prob{suffix}", 0.0)
        if not below:
            return "never"
        beyond = fusion.get(f"named_place_beyond_km{suffix}", 0.0)
        where = f"more than {beyond:g} km from every place class" if beyond else "anywhere outside the decided area"
        when = "whenever" if below > 1 else f"where the decided area is below p = {below:g}"
        sources = fusion.get(f"named_place_sources{suffix}") or ["place_names"]
        said = {"place_names": "a city the post names", "user_places": "the user's trusted past post (as the city nearest it)"}
        what = " or else ".join(said.get(s, s) for s in sources)
        return f"{when}, for {what} {where} (its probability {prob:.2f})"
    return (" A city the post names (or the user's trusted past post) reported as the place instead, chosen on validation users: posting form "
            f"{rule('')}; hashtags as input {rule('_tagged')}.")


def name_trust(state: dict) -> str:
    """How validation chose to trust place names never seen in training (place_names.py: TRUST_SETTINGS)."""
    chosen = state.get("tuning", {}).get("name_trust")
    if not chosen:
        return ""
    said = {"flat": "every unseen name trusted one half", "form": "an unseen name trusted as names written the same way hit in training"}
    tried = "; ".join(f"{k} ×{v['weakest_lead']:.2f}" for k, v in chosen["tried"].items())
    prior, position = chosen["chosen"]
    return (f"Place names' trust chosen on validation users: {said.get(prior, prior)}, a named city pinning coordinates from "
            f"trust {position:g} (weakest lead of each setting tried: {tried}).")


def decision(state: dict) -> str:
    """The decision radius validation chose, and the weakest lead it reached over TagAtlas's single-source answers."""
    tuning = state.get("tuning", {})
    chosen, reference, geo = tuning.get("decision"), tuning.get("geo_reference"), tuning.get("geo", {})
    if not chosen or not reference:
        return ""
    best = reference["best"]
    return (f"Decision radius chosen on validation users: {chosen['chosen_km']:.0f} km, the weakest of the Acc@161, Acc@25 and "
            f"median leads over the best single-source answer (Acc@161 {best['acc_at_161']:.3f}, Acc@25 {best['acc_at_25']:.3f}, "
            f"median {best['median_km']:.0f} km) being ×{geo.get('weakest_lead', 0):.2f} there "
            f"(validation Acc@161 {geo.get('acc_at_161', 0):.3f}, median {geo.get('median_km', 0):.0f} km).")


def calibration(result: dict) -> str:
    c = result.get("calibration") or {}
    if c.get("place_ece") is None:
        return ""
    a, b = c.get("area_calibration", (1.0, 0.0))
    method = ("isotonic regression, chosen over Platt scaling by its ECE on the validation half it was not fitted on"
              if c.get("area_calibration_method") == "isotonic" else f"Platt a = {a:.2f}, b = {b:.2f}")
    target = f"target ≤ {ECE_TARGET:.2f} with {ECE_MIN_QUERIES} located queries or more" if c["n"] >= ECE_MIN_QUERIES else ""
    return (f"Place ECE (15 bins; the first place's probability, of the event that the truth lies within {c.get('area_km', 0):.0f} km "
            f"of it) {c['place_ece']:.3f}{clause(target, value_spread(result, 'place_ece', section=None))}, "
            f"{c['place_ece_uncalibrated']:.3f} before calibration ({method}, "
            f"fitted on validation); {c['hedged']} of {c['n']} located queries were unsure enough to get hedged coordinates.")


def cluster_evidence(state: dict) -> str:
    """What training's graph clusters became in fusion (weights chosen on validation users)."""
    info, tuning, fusion = state["train_info"], state.get("tuning", {}), state["fusion"]
    if not info.get("clusters"):
        return "No graph clusters were built in training."
    by_source = tuning.get("hashtags", {}).get("f1_by_source", {}).get("cluster")
    f1 = (f", validation F1@5 {by_source['f1_without']:.3f} without cluster-mates, {by_source['f1_with']:.3f} with them"
          if by_source else "")
    return (f"Graph clusters built in training: {info['clusters']} clusters of {info['clustered_posts']} indexed posts in "
            f"{info['cluster_seconds']:.0f} s; cluster-mates' weight chosen on validation: places "
            f"{fusion.get('source_place', {}).get('cluster', 0.0):g}, tags {fusion.get('source_tags', {}).get('cluster', 0.0):g}{f1}.")


# The models issue's targets per dataset, against the best baseline of each column (ratios) or absolute.
TARGETS = {
    "tweets2015": {"acc161": 1.25, "median": 0.9}, "users2015": {"acc161": 1.25, "median": 0.9},
    "ja311": {"acc25": 1.25, "median": 0.7}, "im2gps3k": {"acc161": 1.25, "tags_acc161": 0.70, "tags_median": 25.0},
    "yfcc4k": {"f1": 1.3, "tags_acc161": 0.45, "new_tag_hr": 0.15},
}
ECE_TARGET, ECE_MIN_QUERIES = 0.05, 500  # place ECE's target, on every dataset with this many located queries


def spread(result: dict, section: str, key: str) -> str:
    """The interval of a ratio over held-out users (`tagatlas evaluate`'s bootstrap), as a clause; "" without one."""
    lead = (result.get("uncertainty") or {}).get(section, {})
    figure = lead.get(key) if section != "modality_gain" else lead
    if not figure or figure.get("low") is None:
        return ""
    level = 100 * result["uncertainty"].get("level", 0.95)
    return f"{level:.0f} % interval over held-out users ×{figure['low']:.2f}–×{figure['high']:.2f}"


def value_spread(result: dict, key: str, unit: str = "", section: str | None = "geo_with_tags") -> str:
    """The interval of one of TagAtlas's own figures (`tagatlas evaluate`'s bootstrap): the ingest setting's (`section`
    "geo_with_tags"), or with `section` None place ECE and new-tag HR@10; "" without one."""
    figures = (result.get("uncertainty") or {}).get("figures", {})
    figure = (figures if section is None else figures.get(section, {})).get(key)
    if not figure or figure.get("low") is None:
        return ""
    level, digits = 100 * result["uncertainty"].get("level", 0.95), 0 if unit else 3
    return f"{level:.0f} % interval over held-out users {figure['low']:.{digits}f}–{figure['high']:.{digits}f}{unit}"


def clause(*parts: str) -> str:
    """The non-empty parts in brackets, "; " between them; "" when none."""
    shown = [p for p in parts if p]
    return f" ({'; '.join(shown)})" if shown else ""


def ratios(result: dict, name: str = "") -> str:
    """TagAtlas over the best baseline of each column, each with the models issue's target for this dataset (every
    dataset: Acc@25 and median no worse than the best baseline's) and its interval over held-out users."""
    g, h = result["geo"], result["hashtags"]
    target = {"acc25": 1.0, "median": 1.0, **TARGETS.get(name, {})}
    best = lambda key: max(b["acc_at_km"][key] for b in g["baselines"].values())  # noqa: E731
    best_med = min(b["median_km"] for b in g["baselines"].values())
    parts = []
    for label, key in (("Acc@161", "161"), ("Acc@25", "25")):
        if best(key):
            goal = target.get(f"acc{key}")
            parts.append(f"{label} ×{g['tagatlas']['acc_at_km'][key] / best(key):.2f}"
                         + clause(f"target ≥ ×{goal:.2f}" if goal else "", spread(result, "geo", f"acc_{key}")))
    if best_med:
        parts.append(f"median km ×{g['tagatlas']['median_km'] / best_med:.2f}"
                     + clause(f"target ≤ ×{target['median']:.2f}", spread(result, "geo", "median_km")))
    if h["tagatlas"]["n"]:
        best_f1 = max(b["f1_at_5"] for b in h["baselines"].values())
        goal = target.get("f1")
        parts.append(f"F1@5 ×{h['tagatlas']['f1_at_5'] / best_f1:.2f}"
                     + clause(f"target ≥ ×{goal:.2f}" if goal else "", spread(result, "hashtags", "f1_at_5")) if best_f1 else "")
    with_tags = (result.get("geo_with_tags") or {}).get("tagatlas")
    if with_tags and ("tags_acc161" in target or "tags_median" in target):
        parts.append(f"hashtags as input: Acc@161 {with_tags['acc_at_km']['161']:.3f}"
                     + clause(f"target ≥ {target.get('tags_acc161', 0):.2f}", value_spread(result, "acc_161")) + ", "
                     f"median {with_tags['median_km']:.0f} km"
                     + clause(f"target ≤ {target['tags_median']:.0f}" if "tags_median" in target else "", value_spread(result, "median_km", " km")))
    new_hr = h["tagatlas"].get("new_tag_hr_at_10")
    if new_hr is not None:
        goal = target.get("new_tag_hr")
        parts.append(f"new-tag HR@10 {new_hr:.3f}" + clause(f"target > {goal:.2f}" if goal else "", value_spread(result, "new_tag_hr_at_10", section=None)))
    gain = (result.get("uncertainty") or {}).get("modality_gain") or {}
    if gain.get("ratio") is not None:
        parts.append(f"fused Acc@161 over the better single modality ×{gain['ratio']:.2f}"
                     + clause("target ≥ ×1.25" if "acc161" in target and name == "im2gps3k" else "", spread(result, "modality_gain", "")))
    return "Against the best baseline of each column: " + "; ".join(p for p in parts if p) + "."


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench")
    ap.add_argument("--doc", type=Path, default=DOC)
    ap.add_argument("--datasets", nargs="+", metavar="NAME", help="only these datasets of the data root (default: every one)")
    args = ap.parse_args()
    tagatlas = Path(sys.executable).parent / "tagatlas"
    paths = sorted(args.data_root.glob("*/posts.jsonl*"))
    if args.datasets:
        missing = sorted(set(args.datasets) - {p.parent.name for p in paths})
        if missing:
            ap.error(f"--datasets: not in {args.data_root}: {', '.join(missing)}")
        paths = [p for p in paths if p.parent.name in args.datasets]
    for path in paths:
        name = path.parent.name
        model, out_json = args.out / name / "model", args.out / name / "eval.json"
        started = time.perf_counter()
        subprocess.run([str(tagatlas), "train", "--data", str(path), "--out", str(model)], check=True)
        subprocess.run([str(tagatlas), "evaluate", "--model", str(model), "--data", str(path), "--json", str(out_json)], check=True)
        result = json.loads(out_json.read_text())
        state = json.loads((model / "model.json").read_text())
        info = state["train_info"]
        section = (
            f"Data: `{path.relative_to(args.data_root.parent.parent) if args.data_root.parent.parent in path.parents else path}` — "
            f"{info['posts']} training posts ({info['fit_posts']} fit, {info['val_posts']} validation), "
            f"{result['details']['test_posts']} held-out posts of {result['n_users']} held-out users, {result['n_queries']} queries "
            f"({result['details']['geo_queries']} with coordinates, {result['hashtags']['tagatlas']['n']} with hashtags). "
            f"{info['places']} place classes, {info['tags']} classifier tags. Train {result['seconds']['train']:.0f} s, "
            f"evaluate {result['seconds']['evaluate']:.0f} s, wall {time.perf_counter() - started:.0f} s. "
            f"The predicted radius (meant as a 50 % radius) contains the true location for "
            f"{100 * (result['details']['radius_coverage'] or 0):.0f} % of held-out queries. {calibration(result)} {cluster_evidence(state)} "
            f"{source_weights(state)} {name_trust(state)} {decision(state)} {coordinate_rule(state)}\n\n" + table(result) + "\n\n" + ratios(result, name)
            + (f"\n\n{ingest_table(result)}" if ingest_table(result) else ""))
        command = f".venv/bin/python benchmarks/pipeline.py --datasets {name}"
        print(write_block(f"pipeline-{name}", provenance(command) + "\n\n" + section, args.doc, heading=f"### {name}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
