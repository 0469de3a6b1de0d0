"""Image loading and validation, the datamodule (contents x references), atomic output files, bundled samples.
Imports only stylex.errors."""
