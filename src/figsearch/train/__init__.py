"""Training of the drawing encoder (``figsearch train-encoder``): a stage of its own above ``embed``.

``architectures`` builds fresh models of each kind, ``samples`` prepares drawings once, ``trainer``
runs the seeded, resumable loop (``parts``: split, batches, loss, metric; ``augment``: views),
``trainset`` reads collections and ``run`` ties them together for the CLI. This package imports
``figsearch.embed``; nothing in ``embed`` imports it. Modules here import torch: load them lazily.
"""
