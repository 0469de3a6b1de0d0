#!/usr/bin/env python
"""Every method on one content folder x style folder, then one evaluation: the papers' comparison tables.

    python experiments/compare/run.py [contents=DIR] [styles=DIR] [out=DIR] [debug=smoke] [logger=none]
                                      [methods=ad,gallery,styleid,ham_sd21] [RUN_OVERRIDE ...] [eval.OVERRIDE ...]

contents / styles   the input folders (default: the bundled samples)
out                 the results folder (default: outputs/compare/<date>_<time>); rerun into it to resume
debug, logger       passed to every command (debug=smoke: tiny random models, no weights)
methods             the experiments to run (configs/experiment/<name>.yaml; a missing one is skipped with a note)
RUN_OVERRIDE        any other key=value goes to every `python -m stylex.run` (e.g. trainer=gpu data.resolution=256)
eval.OVERRIDE       goes to `python -m stylex.evaluate` without the prefix (e.g. eval.metrics.names=[lpips,fid])

Writes out/<experiment>/images/* (one run per experiment), then out/metrics.csv, summary.csv, summary.md (the
StyleGallery and HAM tables) and grid.png (rows: contents, columns: styles, one panel per method).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = ("ad", "gallery", "styleid", "ham_sd21")
# One output per content x style for every method, so each output has one style image to be scored against
# (StyleGallery then matches regions within that one reference; data.pairing=gallery would use all at once).
COMMON_RUN_OVERRIDES = ("data.pairing=product",)
SHARED_KEYS = ("debug", "logger")


@dataclass
class Plan:
    """What one invocation will do; built from the command line by `parse_args`."""

    out: Path
    experiments: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    contents: str | None = None
    styles: str | None = None
    shared: list[str] = field(default_factory=list)
    run_overrides: list[str] = field(default_factory=list)
    eval_overrides: list[str] = field(default_factory=list)


class UsageError(Exception):
    """A bad command line: printed with the usage, exit status 2."""


def parse_args(argv: list[str], configs: Path = REPO / "configs") -> Plan:
    """key=value arguments -> Plan. Experiments without a config file are skipped (and said so), not fatal."""
    out = Path("outputs/compare") / time.strftime("%Y-%m-%d_%H-%M-%S")
    wanted = list(EXPERIMENTS)
    plan = Plan(out=out, experiments=[])
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise UsageError(f"'{arg}' is not key=value")
        if key == "out":
            plan.out = Path(value)
        elif key == "contents":
            plan.contents = value
        elif key == "styles":
            plan.styles = value
        elif key == "methods":
            wanted = [m.strip() for m in value.strip("[]").split(",") if m.strip()]
            if not wanted:
                raise UsageError("methods= names no experiment; e.g. methods=ad,gallery")
        elif key in SHARED_KEYS:
            plan.shared.append(arg)
        elif key.startswith("eval."):
            plan.eval_overrides.append(arg[len("eval."):])
        else:
            plan.run_overrides.append(arg)
    for name in wanted:
        if (configs / "experiment" / f"{name}.yaml").is_file():
            plan.experiments.append(name)
        else:
            plan.skipped.append((name, f"configs/experiment/{name}.yaml does not exist (yet)"))
    if not plan.experiments:
        raise UsageError("none of the experiments exists: " + "; ".join(f"{n}: {why}" for n, why in plan.skipped))
    return plan


def _quote(path: Path | str) -> str:
    """A path as a quoted Hydra string, so that commas, brackets and spaces in it are not syntax."""
    return "'" + str(path).replace("'", "\\'") + "'"


def run_command(plan: Plan, experiment: str) -> list[str]:
    """`python -m stylex.run` for one experiment into out/<experiment> (rerunning resumes)."""
    data = [f"data.content={_quote(plan.contents)}"] if plan.contents else []
    data += [f"data.styles={_quote(plan.styles)}"] if plan.styles else []
    return [sys.executable, "-m", "stylex.run", f"experiment={experiment}", *data, *COMMON_RUN_OVERRIDES,
            f"hydra.run.dir={_quote(plan.out / experiment)}", *plan.shared, *plan.run_overrides]


def evaluate_command(plan: Plan, done: list[str]) -> list[str]:
    """One `python -m stylex.evaluate` over every finished run: one summary row and one grid panel per method."""
    outputs = "[" + ",".join(_quote(plan.out / name) for name in done) + "]"
    inputs = [f"contents={_quote(plan.contents)}"] if plan.contents else []
    inputs += [f"styles={_quote(plan.styles)}"] if plan.styles else []
    return [sys.executable, "-m", "stylex.evaluate", f"outputs={outputs}", *inputs,
            f"hydra.run.dir={_quote(plan.out)}", *plan.shared, *plan.eval_overrides]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help", "help") for a in args):
        print(__doc__)
        return 0
    try:
        plan = parse_args(args)
    except UsageError as exc:
        print(f"compare: error: {exc}\n{__doc__}", file=sys.stderr)
        return 2
    for name, why in plan.skipped:
        print(f"compare: skipping {name}: {why}", flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done, failed = [], []
    for name in plan.experiments:
        cmd = run_command(plan, name)
        print(f"compare: [{name}] {' '.join(cmd[1:])}", flush=True)
        code = subprocess.run(cmd, env=env).returncode
        (done if code == 0 else failed).append(name)
        if code:
            print(f"compare: {name} failed (exit {code}); its message is above. Going on with the others.",
                  flush=True)
    if not done:
        print("compare: no method produced outputs; nothing to evaluate.", file=sys.stderr)
        return 2
    cmd = evaluate_command(plan, done)
    print(f"compare: [evaluate] {' '.join(cmd[1:])}", flush=True)
    code = subprocess.run(cmd, env=env).returncode
    if code:
        return code
    tables = plan.out / "summary.md"
    if tables.is_file():
        print(f"\n{tables.read_text(encoding='utf-8')}")
    print(f"compare: results in {plan.out}: summary.csv, summary.md, metrics.csv, grid.png"
          + (f"; skipped: {', '.join(n for n, _ in plan.skipped)}" if plan.skipped else "")
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
