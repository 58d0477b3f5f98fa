"""Compare two `tagatlas evaluate` JSON files (e.g. before and after a refactor that must not change predictions).

Prints every difference: keys present on one side only, and values that differ once rounded to `--digits`
decimals. Exit status 0 when the only differences are under the paths given with `--ignore` (prefixes).

    .venv/bin/python benchmarks/compare_eval.py BEFORE.json AFTER.json [--digits 3] [--ignore /seconds /details/fusion]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def differences(a, b, path: str = "", digits: int = 3) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                out.append(f"{path}/{key}: only in {'the first' if key in a else 'the second'}")
            else:
                out += differences(a[key], b[key], f"{path}/{key}", digits)
        return out
    if isinstance(a, list) and isinstance(b, list):
        out = [f"{path}: {len(a)} items against {len(b)}"] if len(a) != len(b) else []
        for i, (x, y) in enumerate(zip(a, b)):
            out += differences(x, y, f"{path}[{i}]", digits)
        return out
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    if numbers and round(float(a), digits) == round(float(b), digits):
        return []
    return [] if a == b else [f"{path}: {str(a)[:80]} against {str(b)[:80]}"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--digits", type=int, default=3)
    ap.add_argument("--ignore", nargs="*", default=[], help="path prefixes whose differences are expected (e.g. /seconds)")
    args = ap.parse_args()
    found = differences(json.loads(args.before.read_text()), json.loads(args.after.read_text()), digits=args.digits)
    unexpected = [d for d in found if not any(d.startswith(prefix) for prefix in args.ignore)]
    print(f"{len(found)} differences, {len(unexpected)} outside --ignore")
    print("\n".join(found))
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
