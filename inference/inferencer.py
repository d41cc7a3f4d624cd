"""BagelInferencer: understanding, thinking, editing and text-to-image on a loaded BAGEL bundle.

The flow follows the original interleaved inferencer: inputs update three guidance contexts; with ``think`` the
model first writes a plan (its text re-tokenised and added to the cond context), then the latent is denoised with
guided velocities (all CFG branches in one batched forward by default) and decoded by the autoencoder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from PIL import Image

from data.prompts import THINK_GENERATION_SYSTEM_PROMPT, THINK_UNDERSTANDING_SYSTEM_PROMPT
from data.transforms import ImageTransform
from modeling.bagel.kv_cache import KVCache
from modeling.bagel.latents import unpatchify_latent
from modeling.bagel.loader import BagelBundle, load_bagel
from modeling.diffusion.guidance import guided_velocity
from modeling.diffusion.sampler import Trajectory, euler_sample
from modeling.diffusion.schedule import sampling_timesteps

from .contexts import GuidanceContexts, ImageInputs
from .static_decode import StaticDecoder
from .settings import InferenceSettings, NoiseSource
from .text_stream import TextCallback, TextStream

DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp32": torch.float32, "float32": torch.float32,
          "fp16": torch.float16}


@dataclass
class GeneratedText:
    token_ids: list[int]  # starts with bos, as the original returns it
    step_logits: torch.Tensor  # [steps, vocab]
    text: str


@dataclass
class GeneratedImage:
    image: Image.Image
    latent_tokens: torch.Tensor  # [h*w, 64] final latent tokens
    trajectory: Trajectory | None = None
    first_step_branch_velocities: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class EditResult:
    image: Image.Image
    think_text: str | None
    timings: dict[str, float]
    settings: dict


@dataclass
class TurnState:
    """A multi-turn edit so far: contexts holding every earlier image, instruction and plan, and its random draws."""

    contexts: GuidanceContexts
    settings: InferenceSettings
    noise: NoiseSource
    think: bool
    seed: int
    turns: int = 0


def tokens_to_image(bundle: BagelBundle, tokens: torch.Tensor, grid_hw: tuple[int, int]) -> Image.Image:
    """Latent tokens -> RGB image: decode, clamp(x/2 + 1/2) * 255, truncated to uint8 (as the original)."""
    latent = unpatchify_latent(tokens, *grid_hw, bundle.config.bagel.latent_patch_size)
    with torch.no_grad():
        pixels = bundle.vae.decode(latent[None].to(bundle.vae.model.device))[0].float()
    array = ((pixels * 0.5 + 0.5).clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)


class BagelInferencer:
    def __init__(self, bundle: BagelBundle, settings: InferenceSettings | None = None):
        self.bundle, self.model = bundle, bundle.model
        self.settings = settings or InferenceSettings()

    @classmethod
    def from_pretrained(cls, model_path: str, device: str = "cuda", dtype: str = "bf16",
                        attn_backend: str = "auto") -> "BagelInferencer":
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; choose one of {sorted(DTYPES)}")
        return cls(load_bagel(model_path, DTYPES[dtype], device, attn_backend))

    @property
    def device(self) -> torch.device:
        return self.model.vae2llm.weight.device

    def resolve_settings(self, overrides: dict) -> InferenceSettings:
        """The inferencer's settings with ``overrides`` (field name -> value) applied and checked."""
        return InferenceSettings.from_dict({**self.settings.to_dict(), **overrides}) if overrides else self.settings

    def image_transforms(self, settings: InferenceSettings) -> tuple[ImageTransform, ImageTransform]:
        """The VAE and ViT transforms, their sizes capped at what the model's position tables cover."""
        cfg = self.bundle.config
        vae_limit = cfg.bagel.max_latent_size * cfg.bagel.latent_patch_size * self.bundle.vae.downsample
        vit_limit = cfg.bagel.vit_max_num_patch_per_side * cfg.vit.patch_size

        def capped(spec: tuple[int, int, int], limit: int) -> ImageTransform:
            max_size, min_size, stride = spec
            return ImageTransform(min(max_size, limit), min(min_size, limit), stride)

        return capped(settings.vae_transform, vae_limit), capped(settings.vit_transform, vit_limit)

    def new_contexts(self, settings: InferenceSettings, for_generation: bool) -> GuidanceContexts:
        return GuidanceContexts(self.bundle, *self.image_transforms(settings), for_generation)

    def edit_with_reflection(self, image: Image.Image, instruction: str, *, think: bool = False, seed: int = 0,
                             max_rounds: int = 3, **kwargs):
        """Edit, then judge the result and refine it for at most ``max_rounds`` edits; returns every round
        (``inference/reflection.py``, which builds on this class and is therefore imported here)."""
        from .reflection import reflect_and_edit

        return reflect_and_edit(self, image, instruction, think=think, seed=seed, max_rounds=max_rounds, **kwargs)

    # ----------------------------------------------------------------------------------------------------- text
    @torch.no_grad()
    def generate_text(self, context: KVCache, settings: InferenceSettings, generator: torch.Generator | None = None,
                      on_text: TextCallback | None = None) -> GeneratedText:
        """Decode from a fork of ``context``: bos first, then greedy (or sampled) tokens until eos or the budget.
        Steps have fixed shapes (a CUDA graph replayed per token on the GPU). ``on_text(piece)`` receives the text as
        it is written; the pieces join to the returned text."""
        special = self.bundle.special_tokens
        stream = TextStream(self.decode_text, on_text) if on_text else None
        decoder = StaticDecoder(self.model, context.fork(settings.max_think_token_n),
                                settings.cuda_graphs and self.device.type == "cuda", settings.compile_layers)
        token = torch.tensor([special.bos], device=self.device)
        ids, rows = [], []
        for _ in range(settings.max_think_token_n):
            logits = decoder.feed(token)[-1].float()
            ids.append(int(token))
            rows.append(logits)
            if stream:
                stream.update(ids)
            if settings.do_sample:
                probs = torch.softmax(logits / settings.temperature, dim=-1)
                token = torch.multinomial(probs.cpu(), 1, generator=generator).to(self.device)
            else:
                token = logits.argmax().reshape(1)
            if int(token) == special.eos:
                break
        text = self.decode_text(ids)
        if stream:
            stream.finish(text)
        return GeneratedText(ids, torch.stack(rows), text)

    def decode_text(self, ids: list[int]) -> str:
        """decode (specials kept), then the part after the first bos and before the first eos."""
        tok = self.bundle.tokenizer
        text = tok.decode(ids, skip_special_tokens=False)
        bos, eos = tok.convert_ids_to_tokens(self.bundle.special_tokens.bos), tok.convert_ids_to_tokens(
            self.bundle.special_tokens.eos)
        text = text.split(eos)[0]
        return text.split(bos)[1] if bos in text else text

    # ---------------------------------------------------------------------------------------------------- image
    @torch.no_grad()
    def generate_image(self, contexts: GuidanceContexts, image_hw: tuple[int, int], settings: InferenceSettings,
                       noise: NoiseSource, record: bool = False, on_step=None) -> GeneratedImage:
        """Denoise h*w latent tokens (image_hw in pixels, multiples of 16) with guided Euler steps and decode."""
        stride = self.bundle.vae.downsample * self.bundle.config.bagel.latent_patch_size
        if image_hw[0] % stride or image_hw[1] % stride:
            raise ValueError(f"image size {image_hw} must be a multiple of {stride} on both sides")
        grid = (image_hw[0] // stride, image_hw[1] // stride)
        s = settings
        x = noise.draw("init_noise", (grid[0] * grid[1], self.bundle.config.patch_latent_dim)).to(self.device)
        branches = contexts.branches(s.cfg_text_scale, s.cfg_img_scale)
        names, caches = list(branches), list(branches.values())
        plan = self.model.plan_image_query
        plans = ([plan(caches, grid, s.compile_layers)] if s.batch_cfg
                 else [plan([c], grid, s.compile_layers) for c in caches])
        cond_plan = plan([contexts.cond], grid, s.compile_layers) if s.batch_cfg else plans[0]
        first: dict[str, torch.Tensor] = {}
        lo, hi = s.cfg_interval

        def velocity(x_t: torch.Tensor, t: torch.Tensor, step: int) -> torch.Tensor:
            if not lo < float(t) <= hi:
                return self.model.predict_velocity(cond_plan, x_t, t)[0]
            outs = torch.cat([self.model.predict_velocity(p, x_t, t) for p in plans])
            by_name = dict(zip(names, outs))
            if step == 0:
                first.update(by_name)
            return guided_velocity(by_name["cond"], by_name.get("cfg_text"), by_name.get("cfg_img"),
                                   s.cfg_text_scale, s.cfg_img_scale, s.cfg_renorm_type, s.cfg_renorm_min)

        trajectory = Trajectory() if record else None
        timesteps = sampling_timesteps(s.num_timesteps, s.timestep_shift, self.device)
        final = euler_sample(velocity, x, timesteps, trajectory, on_step)
        return GeneratedImage(tokens_to_image(self.bundle, final, grid), final, trajectory, first)

    # ---------------------------------------------------------------------------------------------- user tasks
    def prepare_edit(self, image: Image.Image | None, prompt: str, settings: InferenceSettings, think: bool,
                     noise: NoiseSource) -> tuple[GuidanceContexts, ImageInputs | None]:
        contexts = self.new_contexts(settings, for_generation=True)
        if think:
            contexts.add_system_prompt(THINK_GENERATION_SYSTEM_PROMPT)
        inputs = contexts.add_image(image, noise) if image is not None else None
        contexts.add_text(prompt)
        return contexts, inputs

    def edit(self, image: Image.Image, instruction: str, *, think: bool = False, seed: int = 0,
             noise: NoiseSource | None = None, on_step=None, on_text: TextCallback | None = None,
             **overrides) -> EditResult:
        """Edit ``image`` by ``instruction``; with ``think`` the model plans first and edits conditioned on it.
        ``on_step(step, total)`` is called after every denoising step (progress bars), ``on_text(piece)`` as the plan
        is written."""
        if not instruction.strip():
            raise ValueError("the instruction is empty; say what to change")
        return self._generate(image, instruction, think, seed, noise, None, overrides, on_step, on_text)

    def text_to_image(self, prompt: str, height: int = 1024, width: int = 1024, *, think: bool = False, seed: int = 0,
                      noise: NoiseSource | None = None, on_step=None, on_text: TextCallback | None = None,
                      **overrides) -> EditResult:
        overrides.setdefault("cfg_img_scale", 1.0)
        return self._generate(None, prompt, think, seed, noise, (height, width), overrides, on_step, on_text)

    def _generate(self, image, prompt, think, seed, noise, image_hw, overrides, on_step, on_text) -> EditResult:
        settings = self.resolve_settings(overrides)
        noise = noise or NoiseSource(seed, self.device)
        start = time.perf_counter()
        contexts, _ = self.prepare_edit(image, prompt, settings, think, noise)
        timings = {"prefill_s": time.perf_counter() - start}
        return self.think_and_generate(contexts, image_hw or contexts.image_hw, settings, noise, think,
                                       noise_generator(seed), on_step, timings, start, on_text)

    def think_and_generate(self, contexts: GuidanceContexts, image_hw: tuple[int, int], settings: InferenceSettings,
                           noise: NoiseSource, think: bool, text_generator: torch.Generator, on_step,
                           timings: dict, start: float, on_text: TextCallback | None = None) -> EditResult:
        """The last step of an edit, on contexts a caller built (edits, turns, reflection rounds, given plans):
        optionally write the plan into the cond context, then denoise and decode."""
        think_text = None
        if think:
            t0 = time.perf_counter()
            generated = self.generate_text(contexts.cond, settings, text_generator, on_text)
            think_text = generated.text
            contexts.add_thinking(think_text)
            timings["think_s"] = time.perf_counter() - t0
            timings["think_tokens"] = len(generated.token_ids)
        t0 = time.perf_counter()
        out = self.generate_image(contexts, image_hw, settings, noise, on_step=on_step)
        timings["denoise_decode_s"] = time.perf_counter() - t0
        timings["total_s"] = time.perf_counter() - start
        return EditResult(out.image, think_text, timings, settings.to_dict())

    def edit_turns(self, image: Image.Image, instructions: list[str], *, think: bool = False, seed: int = 0,
                   **overrides) -> list[EditResult]:
        """Interleaved multi-turn editing: each turn edits the previous result, and the context keeps every earlier
        image, instruction and plan (as the original interleaved inferencer does with an input list)."""
        if not instructions or not all(i.strip() for i in instructions):
            raise ValueError("every turn needs a non-empty instruction")
        state = self.start_turns(think=think, seed=seed, **overrides)
        results = []
        for instruction in instructions:
            results.append(self.edit_turn(state, results[-1].image if results else image, instruction))
        return results

    def start_turns(self, *, think: bool = False, seed: int = 0, **overrides) -> TurnState:
        """An empty multi-turn edit, for callers that decide each next instruction after seeing a result."""
        settings = self.resolve_settings(overrides)
        contexts = self.new_contexts(settings, for_generation=True)
        if think:
            contexts.add_system_prompt(THINK_GENERATION_SYSTEM_PROMPT)
        return TurnState(contexts, settings, NoiseSource(seed, self.device), think, seed)

    def edit_turn(self, state: TurnState, image: Image.Image, instruction: str, *, on_step=None,
                  on_text: TextCallback | None = None) -> EditResult:
        """The next turn of ``state``: edit ``image`` (usually the last result) with the earlier turns in context."""
        if not instruction.strip():
            raise ValueError("the instruction is empty; say what to change")
        start = time.perf_counter()
        state.contexts.add_image(image, state.noise)
        state.contexts.add_text(instruction)
        timings = {"prefill_s": time.perf_counter() - start}
        result = self.think_and_generate(state.contexts, state.contexts.image_hw, state.settings, state.noise,
                                         state.think, noise_generator(state.seed + state.turns), on_step, timings,
                                         start, on_text)
        state.turns += 1
        return result

    def understand(self, image: Image.Image, question: str, *, think: bool = False, seed: int = 0,
                   on_text: TextCallback | None = None, **overrides) -> str:
        settings = self.resolve_settings(overrides)
        contexts = self.new_contexts(settings, for_generation=False)
        if think:
            contexts.add_system_prompt(THINK_UNDERSTANDING_SYSTEM_PROMPT)
        contexts.add_image(image, NoiseSource(seed))
        contexts.add_text(question)
        return self.generate_text(contexts.cond, settings, noise_generator(seed), on_text).text


def noise_generator(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(seed + 1)
