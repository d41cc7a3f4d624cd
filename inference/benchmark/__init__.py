"""Benchmark evaluation: data, generation, judges, scorers and reports (driven by ``inference/eval_benchmark.py``).

Map of the package:

- ``schema``      the common benchmark folder (``samples.jsonl`` + images) and its loader
- ``benchmarks``  per-benchmark scorer, official aggregation, default folder (21tasks, gedit, imgedit, shapes)
- ``tasks21_categories``  the 21-Tasks-Bench's fixed category list (report order) and the spellings mapped onto it
- ``editor``      the editor contract (``edit(image, instruction, think=, seed=, **hyper)``) and its factory
- ``generate``    sharded, resumable generation with per-sample records
- ``judges/``     ``ChatJudge.ask``: OpenAI-compatible HTTP client, local Qwen2.5-VL, reply cache
- ``scorers/``    VIEScore (+ Meta-CoT's 4 dimensions), ImgEdit, CoT-Editing Consistency (RL reward), ShapesEdit exact
- ``score``       the scoring stage; ``aggregate`` the averages; ``report``, ``grid``, ``compare`` the outputs
- ``calibration`` judge-vs-human agreement (Pearson r, MAE)
- ``converters/`` public releases -> common folder (called by ``scripts/bench_data/convert_*.py``)
- ``pipeline``    generate -> score -> report
"""
