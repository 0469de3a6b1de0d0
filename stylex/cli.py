"""What every command-line entry point shares: where the configs are, clean exits for user errors (status 2, no
traceback, the message also in the run's log file), Ctrl-C as status 130, and checks Hydra cannot make itself
(an override it cannot parse, a run folder it cannot create)."""
from __future__ import annotations

import functools
import logging
import sys
from typing import Any, Callable, TypeVar

from hydra.experimental.callback import Callback

from stylex.checks.folders import check_folders
from stylex.data.samples import config_dir
from stylex.errors import EXIT_USAGE, ConfigError, StylexError

log = logging.getLogger("stylex")
F = TypeVar("F", bound=Callable[..., object])

EXIT_INTERRUPTED = 130  # the shell's status for a command stopped by Ctrl-C (128 + SIGINT)
_task_started = False


CONFIG_DIR = str(config_dir())


def to_log_files(level: int, message: str, exc_info: Any = None) -> None:
    """Put a record in the run's log file(s) only: the console already shows the message (or Hydra prints the
    traceback), and a run that stopped must not leave an empty run.log."""
    record = log.makeRecord(log.name, level, __file__, 0, message, (), exc_info)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def fail(message: str, status: int = EXIT_USAGE) -> None:
    """Print a user-facing error paragraph, record it in the run's log file, and exit with `status`."""
    sys.stdout.flush()
    print(f"stylex: error: {message}", file=sys.stderr, flush=True)
    to_log_files(logging.ERROR, message)
    sys.exit(status)


def interrupted() -> None:
    """Ctrl-C: say what is kept and how to resume; exit 130."""
    from hydra.core.hydra_config import HydraConfig

    try:
        where = f" with hydra.run.dir={HydraConfig.get().runtime.output_dir}"
    except ValueError:
        where = ""
    fail(f"interrupted. Outputs already written are kept; run the same command again{where} to resume where it "
         f"stopped.", EXIT_INTERRUPTED)


def guarded(task: F) -> F:
    """Wrap a Hydra task: `StylexError` and out-of-memory become a message and exit status 2, Ctrl-C status 130;
    any other error is recorded, with its traceback, in the run's log file before Hydra reports it."""

    @functools.wraps(task)
    def wrapper(*args: object, **kwargs: object) -> object:
        global _task_started
        _task_started = True
        try:
            return task(*args, **kwargs)
        except StylexError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            interrupted()
        except MemoryError:
            fail("out of host memory. Lower `data.batch_size` or `data.resolution`.")
        except Exception as exc:
            import torch

            if isinstance(exc, torch.OutOfMemoryError):
                fail(
                    "out of GPU memory. Lower `data.batch_size` (or `data.resolution`), use bf16 "
                    "(`backbone.dtype=bfloat16`), or run on a larger GPU."
                )
            to_log_files(logging.ERROR, f"stopped on an unexpected error: {exc!r}", sys.exc_info())
            raise
        return None

    return wrapper  # type: ignore[return-value]


def unparsable_override(argv: list[str]) -> str | None:
    """The first command-line override Hydra's grammar refuses, if any (checked before Hydra reports it). A
    word without `=` is the rest of the value before it, split by the shell: the two are returned together."""
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        args, _ = get_args_parser().parse_known_args(argv)
    except SystemExit:  # a malformed flag: Hydra's own usage message says more
        return None
    parser = OverridesParser.create()
    overrides = args.overrides or []
    for index, override in enumerate(overrides):
        try:
            parser.parse_overrides([override])
        except OverrideParseException:
            if "=" not in override and index > 0 and "=" in overrides[index - 1]:
                return f"{overrides[index - 1]} {override}"
            return override
    return None


def quoting_hint(override: str) -> str:
    key, _, value = override.partition("=")
    return (f"the override `{override}` cannot be parsed. A value with spaces needs quotes for the shell, and "
            f"one with accents or characters such as ( ) [ ] {{ }} , : = needs quotes for Hydra: quote the value "
            f"inside the shell's quotes, e.g. '{key}=\"{value.strip(chr(34) + chr(39))}\"' (the outer quotes are "
            f"for the shell, the inner ones for Hydra).")


def run_entry(hydra_main: Callable[[], object], command: str) -> None:
    """Run a `@hydra.main` function; a bad override or config (Hydra exits 1 before the task) exits 2."""
    bad = unparsable_override(sys.argv[1:])
    if bad is not None:
        fail(quoting_hint(bad))
    try:
        hydra_main()
    except KeyboardInterrupt:
        interrupted()
    except SystemExit as exc:
        if exc.code == 1 and not _task_started:
            print(
                f"stylex: error: the configuration above could not be composed. Check the override's spelling; "
                f"`python -m stylex.{command} --help` lists the config groups and options.",
                file=sys.stderr,
            )
            sys.exit(EXIT_USAGE)
        raise


class RunFolderCheck(Callback):
    """Hydra creates the run (or sweep) folder before the task starts: try it first, so a folder that cannot be
    written is a message and status 2, not a traceback (configs/hydra/default.yaml registers this)."""

    def on_run_start(self, config: Any, **kwargs: Any) -> None:
        self.check(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        self.check(config.hydra.sweep.dir, "hydra.sweep.dir")

    @staticmethod
    def check(folder: str, setting: str) -> None:
        try:
            check_folders([(folder, setting)])
        except ConfigError as exc:
            fail(str(exc))
