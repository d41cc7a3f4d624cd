"""CoT-Editing Consistency (CEC): does the edited image carry out the task and targets its own CoT states?

This is the Meta-CoT RL reward (judged by a VLM, 0-10; reward = score / 10) and an extra evaluation scorer; the
RL trainer imports ``score_cec`` from here so training and evaluation ask the same question. The judge sees the
plan only (not the user instruction): CEC measures agreement between the reasoning and the edit, not whether the
reasoning was right. A Meta-CoT (``data.metacot``) is shown as a compact plan; free text that is not a Meta-CoT is
shown as written (without the think tags). The prompt wording is ours; the paper's is not public.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from data.metacot import MetaCoT, MetaCoTParseError, parse_metacot, strip_think_tags
from inference.benchmark.judges.base import ChatJudge, JudgeReply
from inference.benchmark.schema import BenchSample
from inference.benchmark.scorers.base import ScoreRecord, record_from_replies
from inference.benchmark.scorers.parsing import parse_single_score

CEC_TEMPLATE = (
    "You check whether an image edit carried out the plan written in its chain of thought.\n"
    "Two images are given: the first is the original image, the second is the edited image.\n"
    "The plan states the editing task and the target(s) it applies to. Boxes, when given, are "
    "[x0, y0, x1, y1] in thousandths of the image width and height.\n\n"
    "PLAN:\n<plan>\n\n"
    "Score from 0 to 10 how well the edited image agrees with the plan:\n"
    "10: every target in the plan is changed exactly as the plan states (right object, right place, right "
    "operation) and nothing the plan leaves out is changed.\n"
    "5: the plan is partly carried out (some targets right, others missing or wrong), or carried out with "
    "clear changes the plan does not ask for.\n"
    "0: the edited image does not reflect the plan (no change, the wrong target, or a different task).\n"
    "Judge agreement with the plan, not whether the plan was a good idea.\n"
    "Answer with one JSON object and nothing else, in this form:\n"
    '{"score": N, "reasoning": "..."}\n'
)


def render_plan(metacot: MetaCoT) -> str:
    lines = [f"Task: {metacot.task}", f"Target: {metacot.target}",
             f"Meta-tasks: {', '.join(metacot.meta_tasks)}"]
    for step in metacot.traversal:
        box = "" if step.box is None else " [" + ", ".join(str(v) for v in step.box) + "]"
        lines.append(f"- {step.target}{box}: {step.meta_task}, {step.operation}")
    return "\n".join(lines)


def cec_prompt(cot_text: str) -> str:
    try:
        plan = render_plan(parse_metacot(cot_text))
    except MetaCoTParseError:
        try:
            plan = strip_think_tags(cot_text)
        except MetaCoTParseError:
            plan = cot_text.strip()
    return CEC_TEMPLATE.replace("<plan>", plan)


def parse_cec_reply(text: str) -> tuple[float, str]:
    return parse_single_score(text, low=0, high=10)


@dataclass
class CECResult:
    score: float | None  # 0-10, None unless status == "ok"
    status: str  # "ok", "parse_fail", "error" or "no_cot"
    reasoning: str
    reply: JudgeReply | None

    @property
    def reward(self) -> float | None:
        """Score mapped to [0, 1]; None for failures, which the caller must handle (never read as 0)."""
        return None if self.score is None else self.score / 10.0


def score_cec(judge: ChatJudge, source: Image.Image, edited: Image.Image, cot_text: str | None) -> CECResult:
    if not cot_text or not cot_text.strip():
        return CECResult(None, "no_cot", "", None)
    if edited.size != source.size:
        edited = edited.resize(source.size, Image.Resampling.BICUBIC)
    reply = judge.ask([cec_prompt(cot_text), source, edited], parse_cec_reply)
    if not reply.ok:
        return CECResult(None, reply.status, "", reply)
    return CECResult(reply.value[0], "ok", reply.value[1], reply)


class CECScorer:
    name = "cec"

    def __init__(self, judge: ChatJudge, judge_prompts: dict | None = None):
        self.judge = judge
        self.judge_model = judge.model_id

    def score(self, sample: BenchSample, source: Image.Image, edited: Image.Image,
              cot_text: str | None) -> ScoreRecord:
        result = score_cec(self.judge, source, edited, cot_text)
        if result.reply is None:
            return ScoreRecord(sample.id, self.name, self.judge_model, result.status,
                               error="no CoT text (run generation with --think)")
        record = record_from_replies(sample.id, self.name, self.judge_model, [result.reply])
        if record.ok:
            record.overall = result.score
            record.subscores = {"cec": result.score}
            record.explanation = result.reasoning
        return record
