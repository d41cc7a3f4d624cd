"""Command-line pieces the inference entry points share, so their flags read the same everywhere.

* booleans take the switch and the value forms alike: ``--think``, ``--think true|false``, ``--no-think``;
* every ``InferenceSettings`` knob is a flag (dashes), with the spellings of the Meta-CoT repository as aliases;
* ``--device auto`` is CUDA when available, else the CPU; ``--dtype auto`` is bf16 on CUDA, fp32 on the CPU;
* ``--help`` shows each default.

Importing this module loads no torch, so scripts that only want the help formatter start fast.
"""

from __future__ import annotations

import argparse
import copy
import shutil
from dataclasses import fields
from pathlib import Path
from typing import Any, Sequence

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
# field -> other accepted spellings (the Meta-CoT / BAGEL repositories spell these so)
FLAG_ALIASES: dict[str, tuple[str, ...]] = {"max_think_token_n": ("--max-think-tokens",),
                                            "cfg_img_scale": ("--cfg-image-scale",)}
NOT_FLAGS = ("extra",)
KNOB_HELP: dict[str, str] = {
    "cfg_text_scale": "text guidance scale",
    "cfg_img_scale": "image guidance scale",
    "cfg_interval": "part LO HI of the denoising time where guidance applies",
    "cfg_renorm_min": "lower bound of the guidance renormalisation factor",
    "cfg_renorm_type": "guidance renormalisation: global, channel or text_channel",
    "timestep_shift": "flow timestep shift",
    "num_timesteps": "denoising steps",
    "max_think_token_n": "most tokens of the chain of thought",
    "do_sample": "sample the chain of thought (false: greedy)",
    "temperature": "sampling temperature of the chain of thought",
    "vae_transform": "VAE input size MAX MIN STRIDE",
    "vit_transform": "ViT input size MAX MIN STRIDE",
    "batch_cfg": "run the guidance branches as one batched forward",
    "cuda_graphs": "replay decoding steps as a CUDA graph (CUDA only)",
    "compile_layers": "torch.compile the decoder layers: faster steps, the first edit of a size pays compilation",
}
DEVICE_HELP = "auto (CUDA when available, else cpu), cuda, cuda:N or cpu"
# the names inference.inferencer.DTYPES maps (listed here so that --help does not load the model code)
DTYPE_CHOICES = ("auto", "bf16", "bfloat16", "fp16", "fp32", "float32")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the description's layout and appends ``(default: X)`` to each flag that has one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.nargs == 0:  # unset, or a plain switch (store_true, --help)
            return action.help
        return super()._get_help_string(action)

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and action.default is not None and action.nargs != 0 and action.option_strings:
            action = copy.copy(action)  # a flag without help text still shows its default
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if isinstance(action, BoolFlag):  # "--think [true|false], --no-think"
            positive = [s for s in action.option_strings if not s.startswith("--no-")]
            negative = [s for s in action.option_strings if s.startswith("--no-")]
            return ", ".join([f"{s} [{action.metavar}]" for s in positive] + negative)
        return super()._format_action_invocation(action)


def parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


class BoolFlag(argparse.Action):
    """``--x`` and ``--x true|false|1|0|yes|no`` set the value; ``--no-x`` sets False."""

    def __init__(self, option_strings: Sequence[str], dest: str, default: Any = None, help: str | None = None,
                 **kwargs: Any):
        negated = ["--no-" + s[2:] for s in option_strings if s.startswith("--")]
        super().__init__([*option_strings, *negated], dest, nargs="?", default=default, help=help,
                         metavar="true|false", **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if option_string and option_string.startswith("--no-"):
            if values is not None:
                parser.error(f"{option_string} takes no value")
            setattr(namespace, self.dest, False)
            return
        try:
            setattr(namespace, self.dest, True if values is None else parse_bool(values))
        except ValueError as e:
            parser.error(f"{option_string}: {e}")


def add_inference_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, with_defaults: bool) -> None:
    """One flag per ``InferenceSettings`` field. ``with_defaults=False``: unset flags stay None (the editor's own
    defaults apply) and the help shows the default model's value."""
    from inference.settings import InferenceSettings  # imported here: scripts using only the helpers stay light

    defaults = InferenceSettings()
    for f in fields(InferenceSettings):
        if f.name in NOT_FLAGS:
            continue
        flags = ("--" + f.name.replace("_", "-"), *FLAG_ALIASES.get(f.name, ()))
        value = getattr(defaults, f.name)
        shown = " ".join(map(str, value)) if isinstance(value, tuple) else value
        kwargs: dict[str, Any] = {"dest": f.name, "default": value if with_defaults else None,
                                  "help": KNOB_HELP[f.name] + ("" if with_defaults else f" (editor default: {shown})")}
        if isinstance(value, bool):
            parser.add_argument(*flags, action=BoolFlag, **kwargs)
        elif isinstance(value, tuple):
            kwargs["default"] = list(value) if with_defaults else None
            metavar = ("LO", "HI") if len(value) == 2 else ("MAX", "MIN", "STRIDE")
            parser.add_argument(*flags, type=type(value[0]), nargs=len(value), metavar=metavar, **kwargs)
        else:
            metavar = {float: "X", int: "N", str: "NAME"}[type(value)]
            parser.add_argument(*flags, type=type(value), metavar=metavar, **kwargs)


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The inference knobs that were set (None: left to the editor)."""
    from inference.settings import InferenceSettings

    return {f.name: getattr(args, f.name) for f in fields(InferenceSettings)
            if f.name not in NOT_FLAGS and getattr(args, f.name) is not None}


def resolve_device(device: str, local_rank: int = 0) -> str:
    """``auto`` -> ``cuda:LOCAL_RANK`` when CUDA is available, else ``cpu``; CUDA asked for on a machine without it
    is a ``ValueError`` naming the fix."""
    import torch

    if device == "auto":
        return f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA GPU is visible on this machine; use --device auto or cpu")
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto`` -> bf16 on CUDA, fp32 elsewhere (CPUs have no fast bf16 matmuls)."""
    if dtype != "auto":
        return dtype
    return "bf16" if device.startswith("cuda") else "fp32"


def first_missing_folder(folder: str | Path) -> Path | None:
    """The outermost folder of ``folder``'s path that does not exist yet (None: it exists), i.e. what a command
    creating ``folder`` makes, so that a failed command can take it back."""
    missing = None
    for candidate in (Path(folder).resolve(), *Path(folder).resolve().parents):
        if candidate.exists():
            return missing
        missing = candidate
    return missing


def remove_unused_folder(created: Path | None, ignored_files: tuple[str, ...] = ()) -> None:
    """Remove ``created`` (from ``first_missing_folder``) when it holds no file besides ``ignored_files``."""
    if created is not None and created.is_dir() and all(
            p.is_dir() or p.name in ignored_files for p in created.rglob("*")):
        shutil.rmtree(created)
