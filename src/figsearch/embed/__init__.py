"""Visual and text encoders behind small interfaces, chosen by name from registries.

``base`` holds the interfaces and registries, ``catalog`` builds encoders by specification string,
``encoders/`` holds the built-in backends. Training the drawing encoder is ``figsearch.train``.
"""

from figsearch.embed.base import TEXT_ENCODERS, VISUAL_ENCODERS, TextEncoder, VisualEncoder

__all__ = ["TEXT_ENCODERS", "VISUAL_ENCODERS", "TextEncoder", "VisualEncoder"]

# built-in backends register themselves on import, exactly as plugins would (none imports torch here)
from figsearch.embed.catalog import load_builtins  # noqa: E402

load_builtins()
