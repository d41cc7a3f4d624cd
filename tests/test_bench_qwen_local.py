"""Local transformers Qwen2.5-VL judge, end to end on a tiny random-weight model built here (no download).

The tokenizer is a small byte-level BPE trained in the test with Qwen's special tokens; the image processor is
transformers' PIL Qwen2-VL processor. Replies of a random model are gibberish, so the parsing path is driven by
constraining greedy decoding to a target text with ``prefix_allowed_tokens_fn`` (the model still runs every step).
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from inference.benchmark.judges.cache import ReplyCache
from inference.benchmark.judges.qwen_inputs import IMAGE_PAD, chat_text, prepare_images, smart_resize
from inference.benchmark.judges.qwen_local import QwenLocalConfig, QwenLocalJudge
from inference.benchmark.schema import BenchSample
from inference.benchmark.scorers import build_scorer
from inference.benchmark.scorers.parsing import parse_score_list
from tests.test_bench_support import solid

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
            "<|video_pad|>"]
PARSE = lambda text: parse_score_list(text, 2, 0, 10)  # noqa: E731


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    folder = tmp_path_factory.mktemp("tiny_qwen25vl")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(['{"score": [7, 4], "reasoning": "the edit is fine"} system user assistant'], trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.save_pretrained(folder)
    Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112).save_pretrained(folder)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIALS}
    config = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"]),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                           fullatt_block_indexes=[1]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(0)
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(folder)
    return str(folder)


def load(path: str, **kw) -> QwenLocalJudge:
    config = QwenLocalConfig(model_path=path, device="cpu", dtype="float32", max_new_tokens=48,
                             min_pixels=56 * 56, max_pixels=112 * 112)
    return QwenLocalJudge.from_pretrained(config, **kw)


def force_reply(judge: QwenLocalJudge, replies: list[str]) -> list[str]:
    """Constrain greedy decoding to spell the next reply of ``replies`` (one per question asked)."""
    tok = judge.tokenizer
    prefix = tok("<|im_start|>assistant\n")["input_ids"]
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    targets: dict[int, list[int]] = {}

    def allowed(batch_id: int, input_ids: torch.Tensor) -> list[int]:
        ids = input_ids.tolist()
        start = max(i for i in range(len(ids) - len(prefix) + 1) if ids[i:i + len(prefix)] == prefix) + len(prefix)
        if start not in targets:  # a new question: take the next scripted reply
            targets.clear()
            targets[start] = tok(replies.pop(0))["input_ids"] + [eos]
        target, step = targets[start], len(ids) - start
        return [target[step]] if step < len(target) else [eos]

    judge.generate_kwargs["prefix_allowed_tokens_fn"] = allowed
    return replies


def test_smart_resize_matches_hand_computed_sizes():
    assert smart_resize(48, 64) == (56, 56)  # round to multiples of 28: 48 -> 56, 64 -> 56
    assert smart_resize(1000, 2000, max_pixels=1_000_000) == (700, 1400)  # shrunk by sqrt(2) then floored to 28
    assert smart_resize(10, 10, min_pixels=56 * 56) == (56, 56)  # grown to the minimum area
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(1, 500)


def test_inputs_hold_one_pad_per_merged_patch_and_images_first(tiny_qwen):
    judge = load(tiny_qwen)
    rgba = Image.new("RGBA", (64, 48), (255, 0, 0, 0))  # fully transparent -> white, as qwen-vl-utils does
    assert prepare_images([rgba], 56 * 56, 112 * 112)[0].getpixel((0, 0)) == (255, 255, 255)
    inputs = judge.build_inputs(None, ["rate it", solid((9, 9, 9), (64, 48)), solid((1, 2, 3), (112, 112))])
    grid = inputs["image_grid_thw"].tolist()
    assert grid == [[1, 4, 4], [1, 8, 8]]  # 64x48 -> 56x56 (4x4 patches); 112x112 -> 8x8
    pad_id = judge.tokenizer.convert_tokens_to_ids(IMAGE_PAD)
    assert int((inputs["input_ids"] == pad_id).sum()) == (16 + 64) // 4  # merge 2x2
    assert inputs["pixel_values"].shape[0] == 16 + 64
    text = chat_text(["rate it", solid((0, 0, 0))])
    assert text.index("<|vision_start|>") < text.index("rate it")
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")


def test_viescore_runs_end_to_end_on_the_tiny_model(tiny_qwen):
    judge = load(tiny_qwen)
    force_reply(judge, ['{"score": [7, 4], "reasoning": "ok"}', '{"score": [9, 8], "reasoning": "ok"}'])
    sample = BenchSample("a", "images/a.png", "make it red", "color")
    record = build_scorer("viescore", judge).score(sample, solid((9, 9, 9)), solid((200, 9, 9)), None)
    assert record.status == "ok", record.replies
    assert record.overall == pytest.approx((4 * 8) ** 0.5)  # sqrt(min(7,4) * min(9,8))
    assert record.judge_model == judge.model_id


def test_unparsable_model_output_is_a_recorded_failure_and_cached(tiny_qwen, tmp_path):
    judge = load(tiny_qwen, cache=ReplyCache(tmp_path), parse_retries=1)
    reply = judge.ask(["rate it", solid((9, 9, 9))], PARSE)
    assert reply.status == "parse_fail" and reply.attempts == 2 and len(reply.raw) == 2
    assert all(isinstance(text, str) for text in reply.raw)

    calls = []
    replay = load(tiny_qwen, cache=ReplyCache(tmp_path), parse_retries=1)
    replay.model.generate = lambda **kw: calls.append(kw)  # any generation would be recorded here
    again = replay.ask(["rate it", solid((9, 9, 9))], PARSE)
    assert again.raw == reply.raw and again.cache_hits == 2 and not calls
