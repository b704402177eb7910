"""CLI commands of the ingest stage (see figsearch.cli)."""
