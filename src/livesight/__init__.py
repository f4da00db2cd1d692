"""livesight: ask any vision-language model about any moment of a live video."""

__version__ = "0.1.0"
