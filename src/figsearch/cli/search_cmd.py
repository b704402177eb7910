"""CLI commands of the search stage (see figsearch.cli)."""
