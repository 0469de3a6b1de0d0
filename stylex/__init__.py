"""stylex: training-free diffusion style transfer (StyleGallery, HAM, Attention Distillation, StyleID).

The package root holds the entry points (`run`, `index`, `evaluate`, `studio`; `bench/` is a package) and the few
modules many layers share: `errors` (user-facing errors), `cli` (clean exits for entry points) and `cache` (the
content-addressed artifact cache used by methods and benchmarks). `pipeline/` turns a composed config into
datamodule, method, loggers and trainer for every entry point. The packages and their layering are in
docs/DESIGN.md.
"""
from stylex.errors import ConfigError, InputError, StylexError, WeightsError

__version__ = "0.1.0"
__all__ = ["StylexError", "InputError", "ConfigError", "WeightsError", "__version__"]
