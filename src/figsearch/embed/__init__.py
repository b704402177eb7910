"""Visual and text encoders behind small interfaces, chosen by name from registries."""

from figsearch.embed.base import TEXT_ENCODERS, VISUAL_ENCODERS, TextEncoder, VisualEncoder

__all__ = ["TEXT_ENCODERS", "VISUAL_ENCODERS", "TextEncoder", "VisualEncoder"]

# built-in backends register themselves on import, exactly as plugins would
from figsearch.embed import drawing  # noqa: E402,F401
