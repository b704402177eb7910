"""CLI commands of the train stage (see figsearch.cli)."""
