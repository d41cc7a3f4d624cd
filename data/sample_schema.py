"""Columns of the parquet shards and JSONL records every data source reads (one schema for all sample kinds).

Images are stored as encoded bytes (PNG/JPEG) in parquet and as paths relative to the JSONL file in JSONL.
Unused columns are null. ``cot`` holds the Meta-CoT as JSON (``MetaCoT.to_dict``) or as rendered text.
"""

from __future__ import annotations

SAMPLE_KINDS: tuple[str, ...] = ("edit", "edit_cot", "t2i", "understanding", "text", "reflection")

COLUMNS: dict[str, str] = {
    "id": "string: unique within the dataset",
    "kind": f"string: one of {SAMPLE_KINDS}",
    "source_image": "bytes: the input image (edit, edit_cot, understanding, reflection)",
    "target_image": "bytes: the edited / generated image (edit, edit_cot, t2i; reflection: what refine should give)",
    "result_image": "bytes: the edit being judged (reflection)",
    "instruction": "string: edit instruction or t2i caption",
    "cot": "string: Meta-CoT JSON (edit_cot, optional in reflection) or free thinking text",
    "verdict": "string: the reflection verdict, JSON of data.reflection.Reflection or its rendered text (reflection)",
    "conversation": "string: JSON list of {'role': 'user'|'assistant', 'text': ...} (understanding, text)",
    "category": "string: task category (optional)",
    "meta": "string: JSON of anything else (scene graphs, source dataset ids)",
}
IMAGE_COLUMNS: tuple[str, ...] = tuple(name for name, doc in COLUMNS.items() if doc.startswith("bytes"))
