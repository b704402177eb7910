"""figsearch: semantic patent-figure retrieval."""

__version__ = "0.1.0"
