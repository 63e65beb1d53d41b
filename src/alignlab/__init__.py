"""alignlab: a laboratory for the AI alignment problem (specified vs intended objectives)."""

__version__ = "0.1.0"
