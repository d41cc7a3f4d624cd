"""Report stage: per-sample JSONL, per-category CSV, summary markdown + JSON for one run.

``scores.jsonl`` has one line per (sample, scorer), samples never generated included with status ``missing``,
so every benchmark sample is accounted for. The summary's headline is the benchmark's official aggregation
(``benchmarks.BENCHMARKS``); macro and micro are both shown.
"""

from __future__ import annotations

import csv
import io
from typing import Sequence

from inference.benchmark.aggregate import Aggregate, aggregate
from inference.benchmark.benchmarks import BenchSpec
from inference.benchmark.files import atomic_write_json, atomic_write_jsonl, atomic_write_text, read_json
from inference.benchmark.layout import RunLayout
from inference.benchmark.schema import LoadedBenchmark
from inference.benchmark.score import load_score
from inference.benchmark.scorers.base import ScoreRecord

PREFERRED_ORDER = ("overall", "SC", "PQ", "instruction_following", "consistency", "naturalness", "artifacts")


def ordered_keys(keys: set[str]) -> list[str]:
    return [k for k in PREFERRED_ORDER if k in keys] + sorted(keys - set(PREFERRED_ORDER))


def fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _sample_rows(bench: LoadedBenchmark, layout: RunLayout, scorer: str, records: dict[str, ScoreRecord]) -> list:
    rows = []
    for sample in bench.samples:
        gen = read_json(layout.gen_record(sample.id)) or {}
        record = records.get(sample.id)
        row = {"id": sample.id, "category": sample.category, "language": sample.language,
               "instruction": sample.instruction, "scorer": scorer, "image": gen.get("image"),
               "cot_text": gen.get("cot_text"), "seed": gen.get("seed"), "gen_seconds": gen.get("seconds"),
               "settings": gen.get("settings")}
        if record is None:
            row.update(status="missing", overall=None, subscores={})
        else:
            row.update({k: v for k, v in record.to_dict().items() if k not in ("sample_id", "scorer")})
        rows.append(row)
    return rows


def _category_csv(aggregates: Sequence[Aggregate]) -> str:
    keys = ordered_keys({k for a in aggregates for c in a.categories for k in c.means})
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["scorer", "category", "n_samples", "n_scored", "n_failed", "n_missing", *keys])
    for a in aggregates:
        for c in a.categories:
            writer.writerow([a.scorer, c.category, c.n_samples, c.n_scored, c.n_failed, c.n_missing,
                             *(fmt(c.means.get(k)) for k in keys)])
        for label, values in (("ALL (macro)", a.macro), ("ALL (micro)", a.micro)):
            writer.writerow([a.scorer, label, a.n_samples, a.n_scored, a.n_failed, a.n_missing,
                             *(fmt(values.get(k)) for k in keys)])
    return buf.getvalue()


def _markdown(spec: BenchSpec, aggregates: Sequence[Aggregate], run_config: dict) -> str:
    lines = [f"# {spec.name}: {spec.description}", ""]
    gen = run_config.get("generation", {})
    lines.append(f"Model: `{run_config.get('model_path')}` | think: {gen.get('think')} | seed: {gen.get('seed')} | "
                 f"hyper: `{gen.get('hyper')}`")
    lines.append("")
    for a in aggregates:
        keys = ordered_keys({k for c in a.categories for k in c.means})
        headline = getattr(a, spec.official).get("overall")
        judge = run_config.get("judges", {}).get(a.scorer, "")
        lines += [f"## {a.scorer} (judge: {judge})", "",
                  f"**Overall ({spec.official}, official): {fmt(headline) or 'n/a'}** | "
                  f"samples {a.n_samples}, scored {a.n_scored}, failed {a.n_failed}, missing {a.n_missing}"
                  + (f" | failures by status: {a.failure_statuses}" if a.failure_statuses else ""), ""]
        lines.append("| category | n | scored | failed | missing | " + " | ".join(keys) + " |")
        lines.append("|---|---|---|---|---|" + "---|" * len(keys))
        for c in a.categories:
            lines.append(f"| {c.category} | {c.n_samples} | {c.n_scored} | {c.n_failed} | {c.n_missing} | "
                         + " | ".join(fmt(c.means.get(k)) for k in keys) + " |")
        for label, values in (("**ALL (macro)**", a.macro), ("**ALL (micro)**", a.micro)):
            lines.append(f"| {label} | {a.n_samples} | {a.n_scored} | {a.n_failed} | {a.n_missing} | "
                         + " | ".join(fmt(values.get(k)) for k in keys) + " |")
        lines.append("")
    return "\n".join(lines)


def write_report(bench: LoadedBenchmark, layout: RunLayout, spec: BenchSpec, scorer_names: Sequence[str],
                 run_config: dict) -> list[Aggregate]:
    aggregates, rows = [], []
    for name in scorer_names:
        records = {s.id: r for s in bench.samples if (r := load_score(layout, name, s.id)) is not None}
        aggregates.append(aggregate(name, bench.samples, list(records.values()), spec.categories))
        rows += _sample_rows(bench, layout, name, records)
    atomic_write_jsonl(layout.samples_report, rows)
    atomic_write_text(layout.category_csv, _category_csv(aggregates))
    atomic_write_text(layout.summary_md, _markdown(spec, aggregates, run_config))
    atomic_write_json(layout.summary_json, {
        "bench": spec.name, "official": spec.official, "run": run_config,
        "skipped_benchmark_lines": bench.skipped,
        "scorers": {a.scorer: {**a.to_dict(), "headline": getattr(a, spec.official).get("overall")}
                    for a in aggregates},
    })
    return aggregates
