"""How well the boxes of a model's Meta-CoT find the objects the edit acts on (ShapesEdit's box IoU).

The true objects are the boxes on the reference Meta-CoT's target lines, which the scene graph gives exactly: the
shapes deleted, changed or moved (their place in the source), the place of an added shape, the zoomed region.
The model's boxes are those on its own target lines. The two sets are matched one to one so that the summed IoU is
largest (Hungarian matching), and

    box_iou = (sum of the matched pairs' IoU) / max(#model boxes, #true boxes)

so a missed object and an extra box each count 0, and 1.0 means every object boxed exactly with nothing extra.
A CoT that does not parse scores 0. There is no score (None) without a CoT or when the reference has no box
(rotations and pans act on the whole view).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from data.boxes import box_iou
from data.metacot import MetaCoT, MetaCoTParseError, parse_metacot


def cot_boxes(cot: MetaCoT) -> list[tuple[int, int, int, int]]:
    return [step.box for step in cot.traversal if step.box is not None]


def matched_iou(predicted: list[tuple], truth: list[tuple]) -> float:
    """Summed IoU of the best one-to-one matching over max(len(predicted), len(truth)) (0 when both are empty)."""
    if not predicted or not truth:
        return 0.0
    iou = np.array([[box_iou(p, t) for t in truth] for p in predicted])
    rows, cols = linear_sum_assignment(iou, maximize=True)
    return float(iou[rows, cols].sum()) / max(len(predicted), len(truth))


def cot_box_iou(reference: dict, cot_text: str | None) -> float | None:
    """The box IoU of the model's CoT against a benchmark reference's Meta-CoT (see the module docstring)."""
    truth = cot_boxes(MetaCoT.from_dict(reference["cot"]))
    if cot_text is None or not truth:
        return None
    try:
        predicted = cot_boxes(parse_metacot(cot_text))
    except MetaCoTParseError:
        return 0.0
    return matched_iou(predicted, truth)
