"""taxopost: post-processing of species-classifier predictions for insect camera traps."""

__version__ = "0.1.0"
