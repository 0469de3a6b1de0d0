from stylex.run import main
from stylex.cli import run_entry

run_entry(main, "run")
