"""The dataset registry: every dataset a YAML mix may name, where its files live and how to read them.

Paths are relative to ``$METACOT_DATA_ROOT`` (default ``./datasets``) unless absolute; a path may be a file, a
directory (all shards below it) or a glob. Records follow ``data/sample_schema.py``; a dataset stored with other
column names maps them with ``columns`` ({our column: its column}), and one without a ``kind`` column sets ``kind``.
Hugging Face ``datasets`` image columns (structs with ``bytes``) are read as they are.

Add a dataset with ``register_dataset(DatasetInfo(...))`` (e.g. from your launcher) or by adding an entry below.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from data.sample_schema import SAMPLE_KINDS

FORMATS = ("parquet", "jsonl")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    format: str
    paths: tuple[str, ...]
    kind: str | None = None  # the kind of every record, when the files have no 'kind' column
    columns: dict[str, str] = field(default_factory=dict)
    image_root: str | None = None  # JSONL only: base of relative image paths (default: the JSONL's folder)
    hf_repo: str | None = None  # where scripts/data/download_hf.py fetches it from
    hf_allow_patterns: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"dataset {self.name}: format {self.format!r} must be one of {FORMATS}")
        if self.kind is not None and self.kind not in SAMPLE_KINDS:
            raise ValueError(f"dataset {self.name}: kind {self.kind!r} must be one of {SAMPLE_KINDS}")
        if not self.paths:
            raise ValueError(f"dataset {self.name}: give at least one path")


def data_root() -> str:
    return os.environ.get("METACOT_DATA_ROOT", "datasets")


def resolve(path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(data_root(), path)


DATASET_INFO: dict[str, DatasetInfo] = {}


def register_dataset(info: DatasetInfo, overwrite: bool = False) -> DatasetInfo:
    if info.name in DATASET_INFO and not overwrite:
        raise ValueError(f"dataset {info.name!r} is already registered; pass overwrite=True to replace it")
    DATASET_INFO[info.name] = info
    return info


def get_dataset(name: str) -> DatasetInfo:
    if name not in DATASET_INFO:
        raise KeyError(f"unknown dataset {name!r}; registered: {', '.join(sorted(DATASET_INFO))} "
                       "(add it in data/dataset_info.py or with register_dataset)")
    return DATASET_INFO[name]


for _info in (
    DatasetInfo("metacot_edit_cot", "parquet", ("metacot/edit_cot",), kind="edit_cot",
                description="Edits with a Meta-CoT (triplet + 3 steps) before the target; CE on the CoT."),
    DatasetInfo("metacot_edit", "parquet", ("metacot/edit",), kind="edit",
                description="Plain instruction edits (source, instruction, target)."),
    DatasetInfo("metacot_understanding", "parquet", ("metacot/understanding",), kind="understanding",
                description="Image + conversation: keeps the understanding ability the CoT relies on."),
    DatasetInfo("metacot_t2i", "parquet", ("metacot/t2i",), kind="t2i", description="Caption -> image."),
    # The synthetic shapes world (scripts/shapes_edit/generate.py --out datasets/shapes_edit): the same samples
    # written three ways, with exact Meta-CoTs, without them, and as questions about the source image.
    DatasetInfo("shapes_edit_cot", "parquet", ("shapes_edit/edit_cot",), kind="edit_cot",
                description="ShapesEdit edits with their exact Meta-CoT."),
    DatasetInfo("shapes_edit_plain", "parquet", ("shapes_edit/edit",), kind="edit",
                description="ShapesEdit edits without CoT (the edit-only baseline)."),
    DatasetInfo("shapes_edit_understanding", "parquet", ("shapes_edit/understanding",), kind="understanding",
                description="ShapesEdit questions about the source scene."),
    # The example data (scripts/download_example_data.sh: ShapesEdit samples in datasets/example) of the example mix
    # data/configs/reasonedit_example.yaml.
    DatasetInfo("example_edit_cot", "parquet", ("example/edit_cot",), kind="edit_cot",
                description="Example edits with their Meta-CoT."),
    DatasetInfo("example_edit", "parquet", ("example/edit",), kind="edit", description="Example plain edits."),
    DatasetInfo("example_understanding", "parquet", ("example/understanding",), kind="understanding",
                description="Example questions about the source image."),
    DatasetInfo("shapes_edit_reflection", "parquet", ("shapes_edit/reflection",), kind="reflection",
                description="ShapesEdit reflection rounds: (source, imperfect edit) -> the exact judge's verdict."),
    DatasetInfo("example_jsonl_edit", "jsonl", ("examples/edit/*.jsonl",),
                description="Layout example: JSONL records with image paths relative to the file."),
):
    register_dataset(_info)
