"""Helpers of the shell launchers (standard library only, so they start fast).

    python scripts/launch.py free-port                 # a free TCP port for a single-node rendezvous
    python scripts/launch.py sft-args CWD CONFIG [key=value ...]

``sft-args`` prints the SFT arguments one per line with CONFIG and path-valued overrides made absolute against CWD
(the caller's directory; the launcher then runs from the repository root), or exits 2 with one line when CONFIG
does not exist.
"""

from __future__ import annotations

import os
import socket
import sys

DEFAULT_PORT = 29500  # torchrun's
# dotted SFT config keys holding paths (train/sft/config.py; tests/test_launchers.py checks the list is complete)
SFT_PATH_KEYS = frozenset({
    "output_dir", "model.model_dir", "model.random_init_configs", "model.components.llm_dir",
    "model.components.vit_dir", "model.components.ae_path", "model.components.ae_config", "data.mix",
    "validation.prompts"})


class LaunchError(ValueError):
    """Bad launcher input; the message is one line."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(preferred: int = DEFAULT_PORT) -> int:
    """``preferred`` when nothing listens there, else a port the OS picks (two runs on one host get two ports)."""
    if port_is_free(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def absolute(path: str, cwd: str) -> str:
    return path if not path or os.path.isabs(path) else os.path.normpath(os.path.join(cwd, path))


def resolve_sft_args(args: list[str], cwd: str) -> list[str]:
    """CONFIG and path-valued ``key=value`` overrides made absolute against ``cwd``; CONFIG must exist."""
    if not args:
        raise LaunchError("no config given; usage: CONFIG.yaml [section.key=value ...]")
    if any("\n" in a for a in args):
        raise LaunchError("arguments may not contain newlines")
    config = absolute(args[0], cwd)
    if not os.path.isfile(config):
        raise LaunchError(f"config file {args[0]} not found (looked at {config}); pass an existing YAML file")
    resolved = [config]
    for item in args[1:]:
        key, sep, value = item.partition("=")
        if sep and key.strip() in SFT_PATH_KEYS and value.strip() not in ("", "null", "~"):
            item = f"{key}={absolute(value.strip(), cwd)}"
        resolved.append(item)
    return resolved


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["free-port"]:
            print(free_port())
        elif argv[:1] == ["sft-args"] and len(argv) >= 2:
            print("\n".join(resolve_sft_args(argv[2:], argv[1])))
        else:
            raise LaunchError("usage: launch.py free-port | sft-args CWD CONFIG [key=value ...]")
    except LaunchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
