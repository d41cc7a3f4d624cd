"""Print a YAML mix's statistics and dump a few packed batches as images + text for inspection.

    python scripts/data/inspect_mix.py data/configs/meta_cot_sft.yaml --tokenizer MODEL_DIR \
        [--dump-dir out/inspect --batches 2]

Each dumped batch_NNN/ holds sequence.txt (every split: decoded text with CE marked, image blocks), summary.json
(lengths, modes, datasets, skip counts) and the VAE / ViT images as the model sees them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from data.inspect_mix import dump_batches, format_statistics, mix_statistics  # noqa: E402
from data.mix_config import MixConfigError, load_mix  # noqa: E402
from data.tokenizer_ids import load_tokenizer  # noqa: E402
from inference.cli_args import HelpFormatter  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    p.add_argument("mix", help="YAML mix (data/configs/*.yaml)")
    p.add_argument("--tokenizer", help="folder with the tokenizer files (a BAGEL checkpoint); needed to dump")
    p.add_argument("--dump-dir", help="write packed batches here")
    p.add_argument("--batches", type=int, default=2)
    args = p.parse_args()
    try:
        mix = load_mix(args.mix)
    except MixConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_statistics(mix_statistics(mix)))
    if mix.disabled_groups:
        print(f"disabled groups (enabled: false): {', '.join(mix.disabled_groups)}")
    if args.dump_dir:
        if not args.tokenizer:
            p.error("--tokenizer is required with --dump-dir")
        tokenizer, special = load_tokenizer(args.tokenizer)
        for folder in dump_batches(mix, tokenizer, special, args.dump_dir, args.batches):
            print(f"dumped {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
