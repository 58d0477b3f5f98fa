"""Settings of the classifier head (`HeadConfig`: the lexical bag's width, dropout, weight decay, ...) checked on
validation users only, against the default.

Each `--set NAME=VALUE[,NAME=VALUE]` is one model; the script holds out half of the validation users (the same halves
as benchmarks/refit.py), trains on the fit users plus the other half once per setting, and evaluates each on the
held-out half with `tagatlas evaluate`'s protocol. The held-out test users are never read past the split. Writes the
`head-settings-<dataset>` block of docs/benchmarks.md (--no-write: prints it only).

    .venv/bin/python benchmarks/head_settings.py --dataset tweets2015 --set bag_dim=512 --set bag_dim=64 --set dropout=0.5
"""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

import tagatlas  # noqa: F401 - before numpy: numpy's BLAS threads must read tagatlas.core.native's setting

from tagatlas.recommender import HeadConfig, ModelConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_file, dataset_arguments, emit_block, nested_config_check  # noqa: E402

TYPES = {f.name: type(getattr(HeadConfig(), f.name)) for f in fields(HeadConfig)}


def parse_setting(text: str) -> dict:
    """'bag_dim=512,dropout=0.5' → {'bag_dim': 512, 'dropout': 0.5}; an unknown name is refused with the known ones."""
    out = {}
    for part in filter(None, text.split(",")):
        name, _, value = part.partition("=")
        if name not in TYPES or not value:
            raise SystemExit(f"--set {text!r}: expected NAME=VALUE with NAME one of {', '.join(TYPES)}")
        out[name] = TYPES[name](value)
    return out


def main() -> int:
    ap = dataset_arguments(__doc__.splitlines()[0])
    ap.add_argument("--set", dest="settings", action="append", default=[], help="NAME=VALUE[,NAME=VALUE]: one head setting to compare")
    args = ap.parse_args()
    configs = {"default": ModelConfig()}
    configs.update({s: ModelConfig(head=HeadConfig(**parse_setting(s))) for s in args.settings})
    command = f".venv/bin/python benchmarks/head_settings.py --dataset {args.dataset}" + "".join(f" --set {s}" for s in args.settings)
    body = nested_config_check(data_file(args.data_root, args.dataset), configs, "head setting", command)
    emit_block(f"head-settings-{args.dataset}", body, "## Head settings", args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
