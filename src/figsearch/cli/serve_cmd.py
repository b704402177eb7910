"""CLI commands of the serve stage (see figsearch.cli)."""
