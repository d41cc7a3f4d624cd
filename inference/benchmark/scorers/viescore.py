"""VIEScore ("tie" editing task), as GEdit-Bench scores edits; also yields the Meta-CoT ablation's 4 dimensions.

Two questions per sample. Semantic consistency (source + edited image): [editing success, over-editing], each
0-10, SC = min. Perceptual quality (edited image only): [naturalness, artifacts], each 0-10, PQ = min. The sample's
overall score is O = sqrt(SC * PQ). The edited image is resized to the source size first, as GEdit's scorer does.

The four raw sub-scores are kept under the names of the Meta-CoT ablation (instruction following = editing
success, consistency = over-editing, naturalness, artifacts); that these are the same quantities is our reading of
the paper (docs/benchmarks_notes.md section 4), not a published protocol.

The prompt wording here is ours, with VIEScore's structure and JSON answer format. To use the official wording put
``{"viescore": {"sc": "...<instruction>...", "pq": "..."}}`` in the benchmark's ``judge_prompts.json``.
"""

from __future__ import annotations

import math

from PIL import Image

from inference.benchmark.judges.base import ChatJudge
from inference.benchmark.schema import BenchSample
from inference.benchmark.scorers.base import ScoreRecord, record_from_replies
from inference.benchmark.scorers.parsing import parse_score_list

CONTEXT = (
    "You are a professional digital artist. You evaluate how well AI-generated images follow given rules.\n"
    "All input images are AI-generated; all people shown are AI-generated adults.\n"
    "Answer with one JSON object and nothing else, in this form:\n"
    '{\n"score": [...],\n"reasoning": "..."\n}\n\n'
)

SC_RULE = (
    "RULES:\n\n"
    "Two images are given: the first is the original image, the second is an edited version of it.\n"
    "Judge how well the editing instruction was carried out in the second image.\n"
    "The two images may look identical when the edit failed.\n\n"
    "Give two scores from 0 to 10.\n"
    "Score 1, editing success: 0 means the edited image does not follow the instruction at all; "
    "10 means it follows the instruction perfectly.\n"
    "Score 2, over-editing: 0 means the edited image is entirely different from the original; "
    "10 means it is recognisably the original with only the requested change.\n"
    "Put them in a list: \"score\": [editing success, over-editing].\n\n"
    "Editing instruction: <instruction>\n"
)

PQ_RULE = (
    "RULES:\n\n"
    "The image is AI-generated. Judge how well it was generated.\n\n"
    "Give two scores from 0 to 10.\n"
    "Score 1, naturalness: 0 means the scene looks unnatural (wrong sense of distance, shadows or lighting); "
    "10 means it looks natural.\n"
    "Score 2, artifacts: 0 means heavy artifacts (distortion, blur, watermarks, malformed faces, hands or "
    "limbs); 10 means no artifacts.\n"
    "Put them in a list: \"score\": [naturalness, artifacts].\n"
)

FOUR_DIMENSIONS: tuple[str, ...] = ("instruction_following", "consistency", "naturalness", "artifacts")


def viescore_overall(sc_scores: list[float], pq_scores: list[float]) -> dict[str, float]:
    """SC = min(SC list), PQ = min(PQ list), overall = sqrt(SC * PQ); plus the four raw sub-scores."""
    sc, pq = min(sc_scores), min(pq_scores)
    return {
        "instruction_following": sc_scores[0], "consistency": sc_scores[1],
        "naturalness": pq_scores[0], "artifacts": pq_scores[1],
        "SC": sc, "PQ": pq, "overall": math.sqrt(sc * pq),
    }


class VIEScoreScorer:
    name = "viescore"

    def __init__(self, judge: ChatJudge, judge_prompts: dict | None = None):
        self.judge = judge
        self.judge_model = judge.model_id
        overrides = (judge_prompts or {}).get("viescore", {})
        self.sc_template = overrides.get("sc", CONTEXT + SC_RULE)
        self.pq_template = overrides.get("pq", CONTEXT + PQ_RULE)
        if "<instruction>" not in self.sc_template:
            raise ValueError("the VIEScore SC prompt must contain the placeholder <instruction>")

    def score(self, sample: BenchSample, source: Image.Image, edited: Image.Image,
              cot_text: str | None = None) -> ScoreRecord:
        if edited.size != source.size:
            edited = edited.resize(source.size, Image.Resampling.BICUBIC)
        parse = lambda text: parse_score_list(text, count=2, low=0, high=10)  # noqa: E731
        sc = self.judge.ask([self.sc_template.replace("<instruction>", sample.instruction), source, edited], parse)
        pq = self.judge.ask([self.pq_template, edited], parse) if sc.ok else None
        replies = [sc] if pq is None else [sc, pq]
        record = record_from_replies(sample.id, self.name, self.judge_model, replies)
        if record.ok:
            scores = viescore_overall(sc.value[0], pq.value[0])
            record.overall = scores.pop("overall")
            record.subscores = scores
            record.explanation = f"SC: {sc.value[1]}\nPQ: {pq.value[1]}"
        return record
