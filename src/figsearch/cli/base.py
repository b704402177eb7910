"""The ``figsearch`` command group, its shared options, and the one place where domain errors become exit codes.

Command modules import ``main`` from here (not from the package), so that the package, which
imports every command module to register it, and the commands do not import each other.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import sys

import click

from figsearch import __version__
from figsearch.errors import FigsearchError

EXIT_ERROR = 2


class _Group(click.Group):
    """Turns FigsearchError into one readable line on stderr and exit status 2, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FigsearchError as exc:
            click.echo(f"figsearch: error: {exc}", err=True)
            sys.exit(EXIT_ERROR)
        except (OSError, sqlite3.OperationalError) as exc:
            # a full disk (or quota) met in a stage that does not turn it into a CollectionError itself (the build's
            # reading of signs, its embedding): one line, as the ingest gives; every commit before it is kept
            line = _out_of_space(exc)
            if line is None:
                raise
            click.echo(f"figsearch: error: {line}; what was committed is kept: free some space and rerun", err=True)
            sys.exit(EXIT_ERROR)
        except KeyboardInterrupt:
            click.echo("figsearch: interrupted; what was committed is kept, rerun to continue", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="figsearch")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """figsearch: find similar patent figures by drawing, by text, or both."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _out_of_space(exc: BaseException) -> str | None:
    """The one line for an error that means the disk (or the quota, or the file-size limit) is full, else None."""
    if isinstance(exc, sqlite3.OperationalError):
        return f"cannot write to the collection: {exc}" if "full" in str(exc) else None
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot write{where}: {exc.strerror}"
    return None


collection_option = click.option(
    "--collection",
    "-c",
    "collection",
    required=True,
    type=click.Path(file_okay=False),
    help="Collection directory.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")


def rerank_default_text() -> str:
    """Which modes re-rank their visual candidates when not told, for --help: from the rule itself
    (``figsearch.search.query.RERANKED_BY_DEFAULT``), so that the help stays true when it changes."""
    from figsearch.search.query import MODES, RERANKED_BY_DEFAULT

    on = [m for m in MODES if m in RERANKED_BY_DEFAULT]
    return f"on in {' and '.join(on)}, off in the other modes" if on else "off"
