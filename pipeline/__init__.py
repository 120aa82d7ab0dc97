"""Building blocks of the ASGL pipeline: pose, skeleton maths, datasets, models, losses, metrics."""

__version__ = "0.1.0"
