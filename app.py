"""The editing web app (Gradio): think-then-edit with the chain of thought streamed as it is written, multi-turn
editing, understanding and text-to-image, with every inference setting on the page.

    pip install -r requirements-app.txt
    python app.py [--model-path DIR] [--device auto|cpu|cuda] [--dtype auto|fp32|bf16] [--port 7860] [--share]
                  [--set num_timesteps=20 --set max_think_token_n=256 ...]

The page's controls call inference/app_logic.py (tested without a browser); this file only lays them out.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from inference.app_logic import (AppInputError, AppModel, EditSession, Knob, knob_overrides,  # noqa: E402
                                 load_app_model, settings_from_assignments, settings_knobs)
from inference.default_model import default_model_path  # noqa: E402
from modeling.bagel.config import CheckpointError  # noqa: E402

MISSING_GRADIO = "error: the web app needs gradio, an optional extra: pip install -r requirements-app.txt"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-path", default=str(default_model_path()),
                   help="folder in the official BAGEL layout (default: %(default)s)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto: the GPU when one is visible (default: %(default)s)")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16"],
                   help="auto: bf16 on a GPU, fp32 on the CPU (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on; 0.0.0.0 for every interface")
    p.add_argument("--port", type=int, default=7860, help="default: %(default)s")
    p.add_argument("--share", action="store_true", help="also serve the page through a public Gradio link")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="starting value of an inference setting on the page (repeatable), e.g. num_timesteps=20")
    return p


def knob_control(gr, knob: Knob):
    if knob.choices:
        return gr.Dropdown(list(knob.choices), value=knob.default, label=knob.label)
    if isinstance(knob.default, bool):
        return gr.Checkbox(value=knob.default, label=knob.label)
    if isinstance(knob.default, int):
        return gr.Number(value=knob.default, label=knob.label, precision=0)
    if isinstance(knob.default, float):
        return gr.Number(value=knob.default, label=knob.label, step=0.1)
    return gr.Textbox(value=knob.shown_default, label=knob.label, info="numbers separated by spaces")


def build_page(gr, model: AppModel, knobs: list[Knob]):
    def failing_as_page_error(run):
        """Input errors and model errors show on the page as one line."""
        def wrapped(*args):
            try:
                yield from run(*args)
            except ValueError as e:
                raise gr.Error(str(e)) from None
        return wrapped

    def edit(continue_from_result: bool):
        @failing_as_page_error
        def run(session, image, instruction, think, seed, *values):
            overrides = knob_overrides(knobs, list(values))
            for session, p in model.edit(session, image, instruction, think, int(seed or 0), overrides,
                                         continue_from_result):
                yield session, p.image, p.text, p.status, session.history
        return run

    @failing_as_page_error
    def understand(image, question, think, seed, *values):
        for p in model.understand(image, question, think, int(seed or 0), knob_overrides(knobs, list(values))):
            yield p.text, p.status

    @failing_as_page_error
    def text_to_image(prompt, height, width, think, seed, *values):
        overrides = knob_overrides(knobs, list(values))
        for p in model.text_to_image(prompt, int(height), int(width), think, int(seed or 0), overrides):
            yield p.image, p.text, p.status

    model_call = {"concurrency_id": "model", "concurrency_limit": 1}
    with gr.Blocks(title="Meta-CoT BAGEL editor", analytics_enabled=False) as page:
        gr.Markdown(f"## Meta-CoT BAGEL: reasoning-driven image editing\nModel: `{model.description}`")
        with gr.Accordion("Advanced settings (every tab; the official defaults)", open=False):
            with gr.Row(equal_height=True):
                controls = [knob_control(gr, knob) for knob in knobs]
        with gr.Tabs():
            with gr.Tab("Edit"):
                # a session holds the model's caches of every turn (GPU memory for the 7B model): freed when the
                # tab closes or after an hour without use
                session = gr.State(EditSession(), time_to_live=3600)
                with gr.Row():
                    with gr.Column():
                        source = gr.Image(type="pil", label="input image", elem_id="edit_input")
                        instruction = gr.Textbox(label="instruction", lines=2, elem_id="edit_instruction")
                        with gr.Row():
                            think = gr.Checkbox(value=True, label="think first (chain of thought)",
                                                elem_id="edit_think")
                            seed = gr.Number(value=0, precision=0, label="seed", elem_id="edit_seed")
                        with gr.Row():
                            edit_button = gr.Button("Edit", variant="primary", elem_id="edit_button")
                            continue_button = gr.Button("Continue from result", elem_id="edit_continue")
                            reset_button = gr.Button("Reset", elem_id="edit_reset")
                        gr.Markdown("*Continue from result* edits the last result with the earlier turns in "
                                    "context (thinking mode, seed and settings of the first turn).")
                    with gr.Column():
                        result = gr.Image(type="pil", format="png", label="result", interactive=False,
                                          elem_id="edit_result")
                        status = gr.Textbox(label="status", interactive=False, elem_id="edit_status")
                        cot = gr.Textbox(label="chain of thought", lines=8, interactive=False, elem_id="edit_cot")
                history = gr.Gallery(label="turns (input first)", columns=6, fit_columns=False, height=240,
                                     object_fit="contain", format="png", elem_id="edit_history")
                edit_outputs = [session, result, cot, status, history]
                edit_inputs = [session, source, instruction, think, seed, *controls]
                edit_button.click(edit(False), edit_inputs, edit_outputs, **model_call)
                continue_button.click(edit(True), edit_inputs, edit_outputs, **model_call)
                reset_button.click(lambda: (EditSession(), None, "", "", []), None, edit_outputs)
            with gr.Tab("Understanding"):
                with gr.Row():
                    with gr.Column():
                        und_image = gr.Image(type="pil", label="image", elem_id="und_input")
                        question = gr.Textbox(label="question", lines=2, elem_id="und_question")
                        with gr.Row():
                            und_think = gr.Checkbox(value=False, label="think first", elem_id="und_think")
                            und_seed = gr.Number(value=0, precision=0, label="seed")
                        ask_button = gr.Button("Ask", variant="primary", elem_id="und_button")
                    with gr.Column():
                        answer = gr.Textbox(label="answer", lines=10, interactive=False, elem_id="und_answer")
                        und_status = gr.Textbox(label="status", interactive=False, elem_id="und_status")
                ask_button.click(understand, [und_image, question, und_think, und_seed, *controls],
                                 [answer, und_status], **model_call)
            with gr.Tab("Text to image"):
                stride, limit = model.image_stride(), model.max_image_side()
                with gr.Row():
                    with gr.Column():
                        prompt = gr.Textbox(label="prompt", lines=2, elem_id="t2i_prompt")
                        with gr.Row():
                            height = gr.Slider(stride, limit, value=min(1024, limit), step=stride, label="height")
                            width = gr.Slider(stride, limit, value=min(1024, limit), step=stride, label="width")
                        with gr.Row():
                            t2i_think = gr.Checkbox(value=False, label="think first", elem_id="t2i_think")
                            t2i_seed = gr.Number(value=0, precision=0, label="seed")
                        gr.Markdown("Image guidance is off here (no input image): *cfg img scale* is ignored.")
                        generate_button = gr.Button("Generate", variant="primary", elem_id="t2i_button")
                    with gr.Column():
                        t2i_result = gr.Image(type="pil", format="png", label="image", interactive=False,
                                              elem_id="t2i_result")
                        t2i_status = gr.Textbox(label="status", interactive=False)
                        t2i_cot = gr.Textbox(label="chain of thought", lines=6, interactive=False)
                generate_button.click(text_to_image, [prompt, height, width, t2i_think, t2i_seed, *controls],
                                      [t2i_result, t2i_cot, t2i_status], **model_call)
    return page


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        defaults = settings_from_assignments(args.set)
    except AppInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: the app may run offline
    try:
        import gradio as gr
    except ImportError:
        print(MISSING_GRADIO, file=sys.stderr)
        return 1
    try:
        model = load_app_model(args.model_path, args.device, args.dtype)
    except (AppInputError, CheckpointError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"loaded {model.description}", file=sys.stderr)
    page = build_page(gr, model, settings_knobs(defaults))
    page.queue().launch(server_name=args.host, server_port=args.port, share=args.share, show_error=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
