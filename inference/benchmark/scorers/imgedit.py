"""ImgEdit basic scorer: the benchmark's own per-edit-type prompt, three "Name: N" scores on a 1-5 scale.

The prompts come with the data (``prompts.json`` / ``judge_prompt.json``), which the converter copies into
``judge_prompts.json`` under ``"imgedit"``, keyed by edit type; ``<edit_prompt>`` is replaced by the instruction.
The message is the prompt, then the original, then the edited image. A sample's score is the mean of its three
scores rounded to 2 decimals, as ImgEdit's ``step1_get_avgscore.py`` computes it.
"""

from __future__ import annotations

from PIL import Image

from inference.benchmark.judges.base import ChatJudge
from inference.benchmark.schema import BenchSample
from inference.benchmark.scorers.base import ScoreRecord, record_from_replies
from inference.benchmark.scorers.parsing import parse_named_scores

PLACEHOLDER = "<edit_prompt>"


def imgedit_sample_score(scores: dict[str, float]) -> float:
    return round(sum(scores.values()) / len(scores), 2)


class ImgEditScorer:
    name = "imgedit"

    def __init__(self, judge: ChatJudge, judge_prompts: dict | None = None):
        self.judge = judge
        self.judge_model = judge.model_id
        self.prompts = (judge_prompts or {}).get("imgedit", {})
        if not self.prompts:
            raise ValueError("judge_prompts.json has no 'imgedit' prompts; convert ImgEdit with "
                             "scripts/bench_data/convert_imgedit.py, which copies the official prompts")

    def score(self, sample: BenchSample, source: Image.Image, edited: Image.Image,
              cot_text: str | None = None) -> ScoreRecord:
        template = self.prompts.get(sample.category)
        if template is None:
            raise KeyError(f"no ImgEdit prompt for edit type {sample.category!r}; have {sorted(self.prompts)}")
        prompt = template.replace(PLACEHOLDER, sample.instruction)
        reply = self.judge.ask([prompt, source, edited], lambda text: parse_named_scores(text, 3, 1, 5))
        record = record_from_replies(sample.id, self.name, self.judge_model, [reply])
        if record.ok:
            record.subscores = dict(reply.value)
            record.overall = imgedit_sample_score(reply.value)
            record.explanation = reply.raw[-1]
        return record
