"""Check this implementation against reference fixture sets, and the full-size key list.

    python scripts/check_reference.py ../shared/reference/bagel-tiny [MORE_SETS ...] [-v]
    python scripts/check_reference.py --keys ../shared/reference/bagel-7b-mot.keys.json

One line per case (name, worst error, its tolerance, PASS/FAIL); exit status 1 if anything fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference.cli_args import HelpFormatter  # noqa: E402
from inference.reference_check import check_fixture_set  # noqa: E402
from modeling.bagel.config import CheckpointError  # noqa: E402
from modeling.reference_cases import key_list_differences  # noqa: E402


def check_keys(keys_path: Path) -> bool:
    configs_path = keys_path.with_name(keys_path.name.replace(".keys.json", ".configs.json"))
    if not configs_path.exists():
        print(f"error: {configs_path} (the configs file beside the key list) is missing", file=sys.stderr)
        return False
    compared, diffs = key_list_differences(keys_path, configs_path)
    for d in diffs:
        print(f"  {d}")
    ok = not diffs
    print(f"keys {keys_path.name}: {compared} keys compared, {len(diffs)} differences  {'PASS' if ok else 'FAIL'}")
    return ok


def check_set(set_dir: Path, device: str, verbose: bool) -> bool:
    print(f"== {set_dir}")
    try:
        results = check_fixture_set(set_dir, device)
    except CheckpointError as e:
        print(f"error: {e}")
        return False
    for r in results:
        worst = r.worst
        figures = f"max err {worst.error:.3g} (tol {worst.tolerance:g}, {worst.name})" if worst else r.message
        print(f"{r.name:<14} {figures:<60} {r.status}")
        if verbose or r.status != "PASS":
            for c in r.checks:
                print(f"    {c.name:<40} {c.error:.3g} <= {c.tolerance:g} [{c.kind}] {'ok' if c.passed else 'FAIL'}")
    return all(r.status == "PASS" for r in results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("sets", nargs="*", type=Path, help="fixture set folders (each with cases/)")
    parser.add_argument("--keys", type=Path, help="a *.keys.json key list (its *.configs.json lies beside it)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every tensor's check")
    args = parser.parse_args(argv)
    if not args.sets and not args.keys:
        parser.error("give at least one fixture set folder or --keys FILE")
    ok = True
    if args.keys:
        ok &= check_keys(args.keys)
    for set_dir in args.sets:
        ok &= check_set(set_dir, args.device, args.verbose)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
