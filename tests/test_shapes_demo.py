"""The ShapesEdit demo pipeline at micro size on the CPU: data -> tokenizer -> AE -> initial folder -> SFT -> export
-> evaluation with the exact judge -> shipped folder -> think-then-edit; plus the tokenizer, the ablation split and
the report's arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
import yaml
from PIL import Image

from data.mix_config import load_mix
from data.render import cot_text
from data.shapes_edit.ablation import ALL, ROWS, ROWS_BY_NAME, SEEN, UNSEEN, VARIANTS
from data.shapes_edit.edits import META_TASK
from data.shapes_edit.export import generate_dataset
from data.shapes_edit.tasks import make_edit_sample
from train.shapes_demo.autoencoder import AETrainSettings
from train.shapes_demo.pipeline import EDIT_ONLY_MIX, META_COT_MIX, DemoSettings, demo_jobs, prepare
from train.shapes_demo.ship import ship_model

ROOT = Path(__file__).resolve().parents[1]


def test_world_tokenizer_round_trips_the_worlds_text_and_has_bagel_tokens(tmp_path):
    from modeling.bagel.loader import load_tokenizer
    from train.shapes_demo.tokenizer import train_world_tokenizer, world_corpus

    train_world_tokenizer(tmp_path, vocab_size=300, num_samples=42)
    tokenizer, special = load_tokenizer(tmp_path)
    assert len(tokenizer) == 300
    assert len({special.bos, special.eos, special.start_of_image, special.end_of_image}) == 4
    for text in world_corpus(42, seed=9):  # other samples than the training ones
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert tokenizer.decode(ids) == text
    cot = make_edit_sample("relational_move", "tok").cot.render()
    assert len(tokenizer.encode(cot)) < 0.8 * len(cot.encode())  # even 39 merges join the commonest words


def test_unseen_categories_combine_meta_tasks_seen_in_training():
    assert set(SEEN) | set(UNSEEN) == set(ALL) and not set(SEEN) & set(UNSEEN) and len(ALL) == 21
    seen_meta = {META_TASK[type(op)] for c in SEEN for i in range(5) for op in _ops(c, i)}
    for category in UNSEEN:
        assert {META_TASK[type(op)] for op in _ops(category, 0)} <= seen_meta
    assert [r.name for r in ROWS].count("meta_cot_full") == 1
    assert ROWS_BY_NAME["edit_only"].data == ROWS_BY_NAME["meta_cot_full"].data  # the same edits, CoT or not


def _ops(category: str, i: int):
    from data.shapes_edit.edits import cot_to_ops

    sample = make_edit_sample(category, f"split/{i}")
    return cot_to_ops(sample.cot, sample.source)[0]


def test_row_datasets_hold_only_their_categories_and_cot_variant(tmp_path):
    variant = VARIANTS["seen_no_thinking"]
    generate_dataset(tmp_path, 20, size=64, shard_size=10, workers=1, categories=variant.categories,
                     drop_task_thinking=True)
    rows = pq.read_table(tmp_path / "edit_cot").to_pylist()
    assert {r["category"] for r in rows} <= set(SEEN) and len(rows) == 20
    assert json.loads(rows[0]["cot"])["task_thinking"] == ""
    assert "Step 2" not in cot_text(rows[0]["cot"]) and "Step 3" in cot_text(rows[0]["cot"])  # the training text
    with pytest.raises(ValueError, match="unknown categories"):
        generate_dataset(tmp_path / "bad", 2, categories=("juggling",))


def test_shipped_mixes_and_config_fit_the_demo_model():
    spec = json.loads((ROOT / "configs/shapes_demo/model.json").read_text())
    for path in (META_COT_MIX, EDIT_ONLY_MIX):
        mix = load_mix(str(ROOT / path), check_paths=False)
        assert mix.packing.max_latent_size == spec["bagel"]["max_latent_size"]
        assert mix.packing.vit_max_num_patch_per_side == spec["bagel"]["vit_max_num_patch_per_side"]
        for group in mix.groups:
            assert group.vae_transform.max_size == 16 * spec["bagel"]["max_latent_size"]
            assert group.vit_transform.max_size == 14 * spec["bagel"]["vit_max_num_patch_per_side"]


@pytest.fixture
def micro_settings(tmp_path) -> DemoSettings:
    spec = json.loads((ROOT / "configs/shapes_demo/model.json").read_text())
    spec["llm"].update(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                       num_key_value_heads=1)
    spec["vit"].update(hidden_size=32, intermediate_size=32, num_hidden_layers=2, num_attention_heads=1)
    spec["ae"].update(ch=32, ch_mult=[1, 1, 1, 1])
    (tmp_path / "model.json").write_text(json.dumps(spec))
    mix = yaml.safe_load((ROOT / META_COT_MIX).read_text())
    mix["tokens"].update(expected_num_tokens=600, max_num_tokens=2048)
    (tmp_path / "mix.yaml").write_text(yaml.safe_dump(mix))
    return DemoSettings(
        run_dir=str(tmp_path / "run"), model_json=str(tmp_path / "model.json"), train_samples=6, bench_per_category=1,
        vocab_size=280, tokenizer_samples=21, ae=AETrainSettings(steps=1, batch_size=1, train_samples=1,
                                                                 eval_samples=1, log_every=1),
        steps=2, device="cpu", data_workers=1,
        sft_overrides=[f"data.mix={tmp_path / 'mix.yaml'}", "data.num_workers=0", "logging.every=1"],
        eval_args=["--num-timesteps", "2", "--max-think-tokens", "6"])


def test_demo_pipeline_end_to_end_on_cpu(micro_settings, monkeypatch, tmp_path):
    from inference.eval_benchmark import main as eval_main
    from inference.inferencer import BagelInferencer
    from train.sft.main import main as sft_main

    torch.set_num_threads(1)
    s = micro_settings
    prepare(s, [VARIANTS["all"]])
    metrics = json.loads((s.run / "ae" / "ae_metrics.json").read_text())
    assert {"mean_psnr_db", "mean_readback_rate", "sample_readback_rate"} <= set(metrics)
    bench = s.bench / "samples.jsonl"
    kept = [line for line in bench.read_text().splitlines() if '"relational_move"' in line or '"remove_object"' in line]
    bench.write_text("\n".join(kept) + "\n")  # two samples keep the evaluation short

    sft, evaluation = demo_jobs(s)
    for key, value in sft.env.items():
        monkeypatch.setenv(key, value)
    assert sft_main(sft.command[3:]) == 0 and sft.done.exists()
    assert eval_main(evaluation.command[2:]) == 0
    summary = json.loads(evaluation.done.read_text())
    scores = [json.loads(line) for line in (evaluation.done.parent / "scores.jsonl").read_text().splitlines()]
    assert len(scores) == 2 and all(r["status"] == "ok" and r["cot_text"] is not None for r in scores), summary
    assert all(0.0 <= r["overall"] <= 10.0 and "quality_raw" in r["subscores"] for r in scores)

    card = ship_model(sft.done.parent, s.bench, tmp_path / "ship", {"sft_steps": s.steps})
    assert card["config"]["parameters"]["total"] > 0 and card["folder_megabytes"] < 40
    example = json.loads((tmp_path / "ship" / "examples" / "examples.json").read_text())[0]
    editor = BagelInferencer.from_pretrained(str(tmp_path / "ship"), device="cpu", dtype="fp32")
    result = editor.edit(Image.open(tmp_path / "ship" / example["image"]), example["instruction"], think=True,
                         num_timesteps=2, max_think_token_n=6)
    assert result.image.size == (128, 128) and result.think_text is not None


def _fake_eval(run: Path, row: str, seed: int, score_of) -> None:
    """scores.jsonl of one evaluation: every category's two samples score ``score_of(category)`` overall."""
    out = run / "rows" / row / f"seed{seed}" / "eval"
    out.mkdir(parents=True)
    lines = []
    for category in ALL:
        for i in range(2):
            value = score_of(category)
            lines.append(json.dumps({"id": f"{category}-{i}", "category": category, "status": "ok", "overall": value,
                                     "subscores": {"instruction": value, "preservation": value, "quality": 10.0,
                                                   "cot_consistency": value}}))
    (out / "scores.jsonl").write_text("\n".join(lines) + "\n")


def test_report_means_spreads_seen_unseen_and_verdicts(tmp_path):
    from train.shapes_demo.plot import plot_ablation
    from train.shapes_demo.report import collect, differences, write_report

    run = tmp_path / "run"
    for seed, shift in ((0, 0.0), (1, 1.0)):  # full: seen 6 / 7, unseen 2 / 3 -> means 6.5, 2.5, spread 0.71
        _fake_eval(run, "meta_cot_full", seed, lambda c, d=shift: (6.0 if c in SEEN else 2.0) + d)
        _fake_eval(run, "meta_cot_direct", seed, lambda c, d=shift: 6.0 + d if c in VARIANTS["direct"].categories
                   else 0.5 + d / 10)
    (run / "jobs.json").write_text(json.dumps({f"{k} {r}/seed{s}": {"wall_seconds": 100.0, "concurrency": 4}
                                               for k in ("sft", "eval") for r in ("meta_cot_full", "meta_cot_direct")
                                               for s in (0, 1)}))
    results = {r.row.name: r for r in collect(run)}
    full = results["meta_cot_full"]
    assert full.over_seeds(full.seen, "overall").mean == pytest.approx(6.5)
    assert full.over_seeds(full.unseen, "overall").mean == pytest.approx(2.5)
    assert full.over_seeds(full.unseen, "overall").spread == pytest.approx(2 ** -0.5)
    assert full.gpu_seconds == pytest.approx(4 * 100.0 / 4)
    verdicts = differences(list(results.values()))
    unseen_line = next(v for v in verdicts if "unseen by both" in v)
    assert unseen_line.startswith("meta_cot_direct - meta_cot_full") and "exceeds" in unseen_line
    path = write_report(list(results.values()), {"source": {"overall": {d: 0.0 for d in
                                                                        ("overall", "instruction", "preservation",
                                                                         "quality", "cot_consistency")}}},
                        tmp_path / "report", plot_ablation)
    text = path.read_text()
    assert "6.50 ± 0.71" in text and "Flow-GRPO" in text and "| source |" in text
    assert Image.open(tmp_path / "report" / "ablation.png").size == (900, 420)


def test_carry_splits_large_files_and_joins_them_back_exactly(tmp_path):
    from scripts.shapes_demo.carry import main as carry

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "big.bin").write_bytes(bytes(range(256)) * 10)  # 2560 bytes
    (src / "sub" / "small.json").write_text("{}")
    assert carry(["split", str(src), str(tmp_path / "pieces"), "--max-mb", "0.001"]) == 0
    assert sorted(p.name for p in (tmp_path / "pieces").iterdir()) == [
        "big.bin.part000", "big.bin.part001", "big.bin.part002", "carry_manifest.json", "sub"]
    assert carry(["join", str(tmp_path / "pieces"), str(tmp_path / "back")]) == 0
    assert (tmp_path / "back" / "big.bin").read_bytes() == (src / "big.bin").read_bytes()
    (tmp_path / "pieces" / "big.bin.part001").write_bytes(b"x")
    assert carry(["join", str(tmp_path / "pieces"), str(tmp_path / "again")]) == 1
