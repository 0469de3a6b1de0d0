"""Running the command-line entry points as a user does, in a subprocess."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a command run as in CI: W&B offline and quiet, no hub downloads, no warnings."""
    return {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"), "HF_HUB_OFFLINE": "1",
            "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore", **(extra or {})}


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(module: str, *overrides: str, cwd: Path, timeout: int = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *overrides], cwd=cwd, env=cli_env(env), capture_output=True,
                          text=True, timeout=timeout)
