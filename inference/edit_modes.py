"""The edit CLI's reasoning modes: reflection rounds, a plan from a file, printing the plan, multi-turn sessions.

``add_reasoning_arguments`` adds the flags, ``ReasoningOptions.from_args`` checks them (and reads the CoT file and
the session folder) before the model loads, ``run_reasoning_job`` edits one job in the chosen mode and writes its
files, and ``run_session_command`` runs a session turn or a replay.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from data.metacot import MetaCoT

from .benchmark.files import atomic_write_png
from .cli_args import BoolFlag
from .cot_override import describe_cot, edit_with_cot, read_cot_file
from .edit_io import EditJob, InputError, check_output_path, load_input_image, run_edit_job, validate_job, write_result
from .inferencer import BagelInferencer, EditResult
from .reflection import DEFAULT_MAX_ROUNDS, DEFAULT_VERDICT_TOKENS, ReflectionResult, reflect_and_edit
from .reflection_sheet import reflection_sheet
from .session import Session, SessionError, replay, run_turn


def add_reasoning_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reasoning: reflection, plans, sessions")
    g.add_argument("--reflect", action=BoolFlag, default=False,
                   help="after the edit the model judges the result (success / refine / failed) and, for refine, "
                        "edits the result again with its refined instruction; every round goes to the JSON sidecar")
    g.add_argument("--max-rounds", type=int, default=DEFAULT_MAX_ROUNDS,
                   help=f"with --reflect: most edits in all (default {DEFAULT_MAX_ROUNDS})")
    g.add_argument("--max-verdict-tokens", type=int, default=DEFAULT_VERDICT_TOKENS,
                   help=f"with --reflect: token budget of each verdict (default {DEFAULT_VERDICT_TOKENS})")
    g.add_argument("--contact-sheet", metavar="PATH", help="with --reflect: write the source and every round side "
                                                          "by side to this image")
    g.add_argument("--print-cot", action=BoolFlag, default=False, help="print the plan: triplet, meta-tasks, targets and boxes")
    g.add_argument("--cot-file", metavar="FILE", help="edit following this Meta-CoT (the text layout the model writes, "
                                                     "<think> tags optional, or its JSON record) instead of a plan "
                                                     "of the model's own")
    g.add_argument("--session", metavar="DIR", help="multi-turn session folder: with --image a new session starts, "
                                                    "without it the last result is edited with --instruction")
    g.add_argument("--replay", metavar="NEWDIR", help="with --session: regenerate every turn into the new folder "
                                                      "NEWDIR and report whether each image is the same")


@dataclass
class ReasoningOptions:
    reflect: bool = False
    max_rounds: int = DEFAULT_MAX_ROUNDS
    max_verdict_tokens: int = DEFAULT_VERDICT_TOKENS
    contact_sheet: Path | None = None
    print_cot: bool = False
    cot: MetaCoT | None = None
    cot_file: str | None = None
    session: Session | None = None
    replay_to: Session | None = None

    @property
    def plain(self) -> bool:
        return not self.reflect and self.cot is None and self.session is None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ReasoningOptions":
        """Every check the reasoning flags can fail before the model loads (nothing is written)."""
        if args.max_rounds < 1 or args.max_verdict_tokens < 1:
            raise InputError(f"--max-rounds ({args.max_rounds}) and --max-verdict-tokens ({args.max_verdict_tokens}) "
                             "must be at least 1")
        if args.contact_sheet and not args.reflect:
            raise InputError("--contact-sheet shows reflection rounds; add --reflect")
        if args.contact_sheet and args.batch:
            raise InputError("--contact-sheet needs a single edit, not --batch")
        if args.cot_file and args.batch:
            raise InputError("--cot-file is the plan of one edit; pass --image/--instruction instead of --batch")
        if args.replay and not args.session:
            raise InputError("--replay regenerates a session; add --session DIR")
        options = cls(args.reflect, args.max_rounds, args.max_verdict_tokens,
                      check_output_path(args.contact_sheet) if args.contact_sheet else None, args.print_cot,
                      read_cot_file(args.cot_file) if args.cot_file else None, args.cot_file)
        if args.session:
            options.session = cls._check_session(args)
            if args.replay:
                options.replay_to = Session.open(args.replay)
                if options.replay_to.exists or (options.replay_to.root.is_dir()
                                                and any(options.replay_to.root.iterdir())):
                    raise SessionError(f"--replay {args.replay} is not empty; replay into a new folder")
        return options

    @staticmethod
    def _check_session(args: argparse.Namespace) -> Session:
        if args.batch or args.reflect:
            raise InputError(f"--session edits one turn at a time; drop {'--batch' if args.batch else '--reflect'}")
        session = Session.open(args.session)
        if args.replay:
            if not session.exists:
                raise SessionError(f"session {args.session} has no turns to replay")
            if args.image or args.instruction or args.cot_file:
                raise InputError("--replay reuses the stored turns; drop --image, --instruction and --cot-file")
            return session
        session.check_next_turn(starting=args.image is not None)
        if args.instruction is None or not args.instruction.strip():
            raise InputError("the instruction is empty; pass --instruction \"what to change\" for the next turn")
        if args.image is not None:
            load_input_image(args.image)
        if args.out is not None:
            check_output_path(args.out)
        return session


def round_image_path(out: Path, number: int) -> Path:
    return out.with_name(f"{out.stem}.round{number}.png")


def _reflection_record(result: ReflectionResult, out: Path) -> dict:
    """Writes every round's image beside OUT; returns the sidecar's ``reflection`` entry."""
    paths = []
    for r in result.rounds:
        path = round_image_path(out, r.round)
        atomic_write_png(path, r.image.convert("RGB"))
        paths.append(path.name)
    return result.to_record(paths)


def run_reasoning_job(inferencer: BagelInferencer, job: EditJob, options: ReasoningOptions, overrides: dict,
                      record: dict) -> EditResult | ReflectionResult:
    """One edit in the mode the options ask for, written as OUT + OUT.json (+ round images, contact sheet)."""
    if options.plain:
        return run_edit_job(inferencer, job, overrides, record)
    image = validate_job(job)
    extra = {"image": str(job.image), "instruction": job.instruction, "seed": job.seed, "think": job.think,
             "input_size": list(image.size)}
    if options.cot is not None:
        extra.update(cot_file=options.cot_file, cot_source="file")
    if options.reflect:
        result = reflect_and_edit(inferencer, image, job.instruction, think=job.think, seed=job.seed,
                                  max_rounds=options.max_rounds, cot=options.cot,
                                  max_verdict_tokens=options.max_verdict_tokens, **overrides)
        extra["reflection"] = _reflection_record(result, job.out)
        if options.contact_sheet is not None:
            reflection_sheet(image, result).save(options.contact_sheet)
    else:
        result = edit_with_cot(inferencer, image, job.instruction, options.cot, seed=job.seed, **overrides)
    write_result(result, job.out, {**record, **extra})
    return result


def run_session_command(inferencer: BagelInferencer, args: argparse.Namespace, options: ReasoningOptions,
                        overrides: dict, record: dict) -> int:
    """A session turn (or a replay); prints one JSON line per turn."""
    session = options.session
    if options.replay_to is not None:
        for line in replay(inferencer, session, options.replay_to.root, record, overrides.get("on_step")):
            print(json.dumps(line))
        return 0
    image = load_input_image(args.image) if args.image else None
    turn, result = run_turn(inferencer, session, args.instruction, image=image, think=args.think, seed=args.seed,
                            cot=options.cot, model=record, **overrides)
    if args.out:
        write_result(result, Path(args.out), {**record, "session": str(session.root), "turn": turn.turn,
                                              "instruction": turn.instruction, "seed": turn.seed})
    if options.print_cot:
        print(describe_cot(result.think_text))
    print(json.dumps({"session": str(session.root), "turn": turn.turn, "out": str(session.root / turn.output_image),
                      "seconds": round(result.timings["total_s"], 2), "think_text": result.think_text}))
    sys.stdout.flush()
    return 0
