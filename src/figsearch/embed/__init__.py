"""Visual and text encoders behind small interfaces, chosen by name from registries."""

from figsearch.embed.base import TEXT_ENCODERS, VISUAL_ENCODERS, TextEncoder, VisualEncoder

__all__ = ["TEXT_ENCODERS", "VISUAL_ENCODERS", "TextEncoder", "VisualEncoder"]
