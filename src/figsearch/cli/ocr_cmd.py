"""CLI commands of the ocr stage (see figsearch.cli)."""
