"""Write a contact sheet PNG of one ShapesEdit sample per category.

    python -m scripts.shapes_edit.contact_sheet --out docs/images/shapes_edit_contact_sheet.png
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from data.shapes_edit.contact_sheet import contact_sheet
from inference.cli_args import HelpFormatter


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--thumb", type=int, default=128, help="thumbnail side in pixels (64..512)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    contact_sheet(thumb=args.thumb, seed=args.seed).save(tmp, format="PNG")
    os.replace(tmp, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
