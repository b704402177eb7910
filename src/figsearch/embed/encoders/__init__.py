"""The built-in encoders, one module per registered name: ``hog``, ``lines``, ``clip``, ``drawing``
(whose model kinds live in ``drawing/``), and the sentence-transformers text encoders (``text``).

Each module registers its encoder in ``figsearch.embed.base``'s registries on import, exactly as a
plugin would; ``figsearch.embed.catalog`` imports them and builds encoders by name.
"""
