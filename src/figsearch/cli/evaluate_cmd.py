"""CLI commands of the evaluate stage (see figsearch.cli)."""
