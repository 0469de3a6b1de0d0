"""What every command-line entry point shares: clean exits for user errors, status 2, no traceback."""
from __future__ import annotations

import functools
import logging
import sys
from typing import Callable, TypeVar

from stylex.errors import EXIT_USAGE, StylexError

log = logging.getLogger("stylex")
F = TypeVar("F", bound=Callable[..., object])

_task_started = False


def fail(message: str) -> None:
    """Print a user-facing error paragraph and exit with status 2."""
    sys.stdout.flush()
    print(f"stylex: error: {message}", file=sys.stderr, flush=True)
    sys.exit(EXIT_USAGE)


def guarded(task: F) -> F:
    """Wrap a Hydra task: `StylexError` and out-of-memory become a message and exit status 2."""

    @functools.wraps(task)
    def wrapper(*args: object, **kwargs: object) -> object:
        global _task_started
        _task_started = True
        try:
            return task(*args, **kwargs)
        except StylexError as exc:
            fail(str(exc))
        except MemoryError:
            fail("out of host memory. Lower `data.batch_size` or `data.resolution`.")
        except Exception as exc:
            import torch

            if isinstance(exc, torch.OutOfMemoryError):
                fail(
                    "out of GPU memory. Lower `data.batch_size` (or `data.resolution`), use bf16 "
                    "(`backbone.dtype=bfloat16`), or run on a larger GPU."
                )
            raise
        return None

    return wrapper  # type: ignore[return-value]


def run_entry(hydra_main: Callable[[], object], command: str) -> None:
    """Run a `@hydra.main` function; a bad override or config (Hydra exits 1 before the task) exits 2."""
    try:
        hydra_main()
    except SystemExit as exc:
        if exc.code == 1 and not _task_started:
            print(
                f"stylex: error: the configuration above could not be composed. Check the override's spelling; "
                f"`python -m stylex.{command} --help` lists the config groups and options.",
                file=sys.stderr,
            )
            sys.exit(EXIT_USAGE)
        raise
