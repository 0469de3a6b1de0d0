"""`python -m stylex.bench`: speed and memory measurements, one module per task (methods, gallery, regional) and
the report they share. May import anything in stylex; nothing in stylex imports it."""
