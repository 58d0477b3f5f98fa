"""How many training posts a place class needs (`ModelConfig.min_place_posts`), checked on validation users only.

Place classes are the places training posts were, each kept where it has at least `min_place_posts` of them (the
rest fold into the nearest kept place). On sparse data (users2015: one post per user) few places reach that, so many
cities a post names lie beyond every class. This script holds out half of the validation users (the same halves as
benchmarks/refit.py), trains on the fit users plus the other half once per setting, and evaluates each on the held-out
half with `tagatlas evaluate`'s protocol. The held-out test users are never read past the split. Writes the
`place-classes-<dataset>` block of docs/benchmarks.md.

    .venv/bin/python benchmarks/place_classes.py --dataset users2015
"""

from __future__ import annotations

import sys
from pathlib import Path

import tagatlas  # noqa: F401 - before numpy: numpy's BLAS threads must read tagatlas.core.native's setting

from tagatlas.recommender import ModelConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_file, dataset_arguments, emit_block, nested_config_check  # noqa: E402

DEFAULT = ModelConfig().min_place_posts


def main() -> int:
    ap = dataset_arguments(__doc__.splitlines()[0])
    ap.add_argument("--settings", type=int, nargs="+", default=[DEFAULT, 2, 1], help="min_place_posts values to compare")
    args = ap.parse_args()
    configs = {f"{n}{' (default)' if n == DEFAULT else ''}": ModelConfig(min_place_posts=n) for n in args.settings}
    command = f".venv/bin/python benchmarks/place_classes.py --dataset {args.dataset}"
    if args.settings != [DEFAULT, 2, 1]:
        command += " --settings " + " ".join(map(str, args.settings))
    body = nested_config_check(data_file(args.data_root, args.dataset), configs, "posts a place class needs", command, show_places=True)
    emit_block(f"place-classes-{args.dataset}", body, "## Posts a place class needs", args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
