"""A byte-level BPE tokenizer for the ShapesEdit world, saved as a transformers tokenizer folder.

Trained (``tokenizers``) on the world's text: instructions, Meta-CoTs with and without Step 2 (Keep lines and boxes
included), understanding questions and answers, and BAGEL's system prompts. Byte-level, so any text still encodes
and decodes back exactly; BAGEL's special tokens are part of the vocabulary (``load_tokenizer`` finds them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from data.prompts import THINK_GENERATION_SYSTEM_PROMPT, THINK_UNDERSTANDING_SYSTEM_PROMPT
from data.shapes_edit.export import CATEGORY_NAMES
from data.shapes_edit.tasks import make_edit_sample
from data.shapes_edit.understanding import make_conversation

PAD_TOKEN = "<|endoftext|>"
SPECIAL_TOKENS = (PAD_TOKEN, "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>")


def world_corpus(num_samples: int, seed: int = 0) -> Iterator[str]:
    """Texts of ``num_samples`` edit samples (cycling through the 21 categories) and the system prompts."""
    yield THINK_GENERATION_SYSTEM_PROMPT
    yield THINK_UNDERSTANDING_SYSTEM_PROMPT
    for i in range(num_samples):
        sample = make_edit_sample(CATEGORY_NAMES[i % len(CATEGORY_NAMES)], f"tokenizer/{seed}/{i}")
        yield sample.instruction
        yield sample.cot.render()
        yield dataclasses.replace(sample.cot, task_thinking="").render()
        for turn in make_conversation(sample.source, sample.id):
            yield turn["text"]


def train_world_tokenizer(out_dir: str | Path, vocab_size: int = 1024, num_samples: int = 2000,
                          seed: int = 0) -> PreTrainedTokenizerFast:
    """Train and save (``tokenizer.json`` + ``tokenizer_config.json``) a tokenizer of ``vocab_size`` entries."""
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size {vocab_size} is below the 256 bytes plus {len(SPECIAL_TOKENS)} special tokens")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(world_corpus(num_samples, seed), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token=PAD_TOKEN, eos_token="<|im_end|>",
                                      additional_special_tokens=list(SPECIAL_TOKENS[1:]),
                                      clean_up_tokenization_spaces=False)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    wrapped.save_pretrained(str(out_dir))
    return wrapped
