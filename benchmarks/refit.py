"""Does refitting the head on all training users after fusion was tuned help? A nested check on validation users only.

Training tunes fusion on validation users with the head fitted on the other users, then (`ModelConfig.refit`, on by
default) trains the head again on all of them, keeping the fusion tuned for the first head. Whether that helps
cannot be read off held-out users without tuning on them, so this script holds out half of the validation users
(V2, chosen by a salted hash of the user), trains on the fit users plus the other half twice (refit on and off) and
evaluates both on V2 with `tagatlas evaluate`'s protocol. The held-out test users are never read past the split.
Writes the `refit-<dataset>` block of docs/benchmarks.md.

    .venv/bin/python benchmarks/refit.py --dataset users2015
"""

from __future__ import annotations

import sys
from pathlib import Path

import tagatlas  # noqa: F401 - before numpy: numpy's BLAS threads must read tagatlas.core.native's setting

from tagatlas.recommender import ModelConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_file, dataset_arguments, emit_block, nested_config_check  # noqa: E402


def main() -> int:
    ap = dataset_arguments(__doc__.splitlines()[0])
    args = ap.parse_args()
    configs = {"refit (default)": ModelConfig(refit=True), "no refit": ModelConfig(refit=False)}
    body = nested_config_check(data_file(args.data_root, args.dataset), configs, "head",
                               f".venv/bin/python benchmarks/refit.py --dataset {args.dataset}")
    emit_block(f"refit-{args.dataset}", body, "## Refitting the head after tuning", args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
