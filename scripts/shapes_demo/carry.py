"""Carry a folder back from the GPU machine, whose copies are limited to 16 MB per file: split and rejoin.

    python -m scripts.shapes_demo.carry split runs/shapes_demo/demo/sft/export/final $OUT/final --max-mb 15
    python -m scripts.shapes_demo.carry join COPIED/final assets/shapes_edit_bagel

``split`` copies the tree, cutting files larger than --max-mb into NAME.partNNN pieces, and writes
carry_manifest.json (sizes and SHA-256 of the originals); ``join`` rebuilds the files and checks every hash.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

MANIFEST = "carry_manifest.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split_tree(src: Path, out: Path, max_bytes: int) -> dict:
    files = {}
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src)
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        size = path.stat().st_size
        parts = 0
        if size > max_bytes:
            with open(path, "rb") as f:
                while block := f.read(max_bytes):
                    (target.parent / f"{target.name}.part{parts:03d}").write_bytes(block)
                    parts += 1
        else:
            shutil.copy2(path, target)
        files[str(rel)] = {"bytes": size, "sha256": _sha256(path), "parts": parts}
    manifest = {"files": files}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def join_tree(src: Path, out: Path) -> int:
    manifest = json.loads((src / MANIFEST).read_text())
    for rel, info in manifest["files"].items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if info["parts"]:
            with open(target, "wb") as f:
                for i in range(info["parts"]):
                    f.write((src / f"{rel}.part{i:03d}").read_bytes())
        else:
            shutil.copy2(src / rel, target)
        if _sha256(target) != info["sha256"]:
            raise ValueError(f"{rel}: SHA-256 differs after joining; copy the pieces again")
    return len(manifest["files"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("split", help="copy SRC to OUT, cutting large files")
    s.add_argument("src")
    s.add_argument("out")
    s.add_argument("--max-mb", type=float, default=15.0, help="largest piece in MB (10^6 bytes)")
    j = sub.add_parser("join", help="rebuild the files of a split copy and check their hashes")
    j.add_argument("src")
    j.add_argument("out")
    args = p.parse_args(argv)
    src, out = Path(args.src), Path(args.out)
    try:
        if args.command == "split":
            if not src.is_dir():
                raise FileNotFoundError(f"{src} is not a folder")
            manifest = split_tree(src, out, int(args.max_mb * 1e6))
            print(f"split {len(manifest['files'])} files into {out}")
        else:
            if not (src / MANIFEST).exists():
                raise FileNotFoundError(f"{src / MANIFEST} not found; pass the folder 'split' wrote")
            print(f"joined {join_tree(src, out)} files into {out}")
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
