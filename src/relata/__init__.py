"""relata: one point of truth about every customer."""

__version__ = "0.1.0"
