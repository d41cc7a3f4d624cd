"""The system prompts BAGEL's thinking modes put before the context (exact texts of the released checkpoint)."""

from __future__ import annotations

THINK_GENERATION_SYSTEM_PROMPT = (
    "You should first think about the planning process in the mind and then generate the image. \n"
    "The planning process is enclosed within <think> </think> tags, "
    "i.e. <think> planning process here </think> image here"
)

THINK_UNDERSTANDING_SYSTEM_PROMPT = (
    "You should first think about the reasoning process in the mind and then provide the user with the answer. \n"
    "The reasoning process is enclosed within <think> </think> tags, "
    "i.e. <think> reasoning process here </think> answer here"
)
