"""ShapesEdit: a synthetic reasoning-editing world with an exact judge.

scene.py (scene graph) -> render.py (exact pixels) -> recover.py (pixels back to a scene graph);
edits.py (operations <-> Meta-CoT target lines) -> categories_*.py + tasks.py (21 categories of edit samples),
understanding.py (questions with exact answers); judge.py (``score_edit``); export.py (parquet shards, benchmark
folder); contact_sheet.py (a picture of every category); imperfect.py + corrections.py + reflection_samples.py
(reflection rows: imperfect edits, their exact verdicts and refined instructions); grounding.py (box IoU of CoTs).
"""
