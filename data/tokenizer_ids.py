"""Load a Qwen2-style tokenizer folder and the four special-token ids BAGEL derives from it."""

from __future__ import annotations

from typing import Any

# BAGEL's choice: the chat delimiters open/close text blocks, the vision delimiters wrap image blocks.
SPECIAL_TOKEN_NAMES = {"bos_token_id": "<|im_start|>", "eos_token_id": "<|im_end|>",
                       "start_of_image": "<|vision_start|>", "end_of_image": "<|vision_end|>"}


def special_token_ids(tokenizer: Any) -> dict[str, int]:
    ids = {key: tokenizer.convert_tokens_to_ids(token) for key, token in SPECIAL_TOKEN_NAMES.items()}
    unknown = getattr(tokenizer, "unk_token_id", None)
    missing = [SPECIAL_TOKEN_NAMES[k] for k, v in ids.items() if v is None or (unknown is not None and v == unknown)]
    if missing:
        raise ValueError(f"the tokenizer lacks {missing}; use the tokenizer of a BAGEL / Qwen2.5 checkpoint")
    return ids


def load_tokenizer(path: str) -> tuple[Any, dict[str, int]]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    return tokenizer, special_token_ids(tokenizer)
