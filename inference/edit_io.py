"""Inputs and outputs of command-line edits: validated image loading, atomic image + JSON writing, edit jobs."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from data.atomic_write import atomic_write
from data.image_io import ImageLoadError, load_image

from .inferencer import BagelInferencer, EditResult


class InputError(ValueError):
    """Bad user input; the message is one line naming the problem and the fix."""


@dataclass
class EditJob:
    image: Path
    instruction: str
    out: Path
    seed: int = 0
    think: bool = False


_LOAD_FIXES = {"missing": "check the --image path", "corrupt": "re-export the image",
               "too_large": "downscale the image first"}


def load_input_image(path: str | Path) -> Image.Image:
    """The input as upright 8-bit RGB (``data.image_io.load_image``: EXIF orientation, 16-bit scaled), or
    ``InputError``."""
    try:
        return load_image(Path(path), name=f"input image {path}")
    except ImageLoadError as e:
        raise InputError(f"{e}; {_LOAD_FIXES.get(e.reason, 'pass a PNG/JPEG/WebP file')}") from None


def check_output_path(out: str | Path) -> Path:
    """The output must be a .png/.jpg/.webp in a writable folder, created if missing (checked before the model loads)."""
    out = Path(out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise InputError(f"--out {out} must end in .png, .jpg or .webp")
    folder = out.parent if str(out.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"output folder {folder} cannot be created ({e.strerror}); choose another --out") from None
    if not os.access(folder, os.W_OK):
        raise InputError(f"output folder {folder} is not writable; choose another --out")
    return out


def sidecar_path(out: str | Path) -> Path:
    """``OUT.png`` -> ``OUT.png.json``: named after the whole file name, so OUT.png and OUT.jpg keep their own."""
    out = Path(out)
    return out.with_name(out.name + ".json")


def write_result(result: EditResult, out: Path, record: dict) -> Path:
    """OUT image and its sidecar OUT.EXT.json (parameters, CoT text, timings), each written atomically; returns the
    sidecar path."""
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(out.suffix.lower(), "PNG")
    meta = sidecar_path(out)
    atomic_write(out, lambda tmp: result.image.save(tmp, format=fmt))
    payload = {**record, "think_text": result.think_text, "timings": result.timings, "settings": result.settings,
               "output": str(out), "output_size": list(result.image.size)}
    atomic_write(meta, lambda tmp: Path(tmp).write_text(json.dumps(payload, indent=2, default=str)))
    return meta


def validate_job(job: EditJob) -> Image.Image:
    """Every check a job can fail before any model work; returns the decoded input image."""
    if not job.instruction.strip():
        raise InputError("the instruction is empty; pass --instruction \"what to change\"")
    check_output_path(job.out)
    return load_input_image(job.image)


def run_edit_job(inferencer: BagelInferencer, job: EditJob, overrides: dict, record: dict) -> EditResult:
    image = validate_job(job)
    result = inferencer.edit(image, job.instruction, think=job.think, seed=job.seed, **overrides)
    write_result(result, job.out, {**record, "image": str(job.image), "instruction": job.instruction,
                                   "seed": job.seed, "think": job.think, "input_size": list(image.size)})
    return result


def read_batch_file(path: str | Path, default_seed: int, default_think: bool) -> list[EditJob]:
    """JSONL lines {"image", "instruction", "out", optional "seed", "think"}; paths relative to the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"batch file {path} does not exist")
    jobs = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            jobs.append(EditJob((path.parent / row["image"]), row["instruction"], (path.parent / row["out"]),
                                int(row.get("seed", default_seed)), bool(row.get("think", default_think))))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise InputError(f"{path}:{n}: bad line ({e}); each line needs image, instruction and out") from None
    if not jobs:
        raise InputError(f"batch file {path} has no jobs")
    return jobs
