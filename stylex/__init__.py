"""stylex: training-free diffusion style transfer (StyleGallery, HAM, Attention Distillation, StyleID)."""
from stylex.errors import ConfigError, InputError, StylexError, WeightsError

__version__ = "0.1.0"
__all__ = ["StylexError", "InputError", "ConfigError", "WeightsError", "__version__"]
