"""The ``figsearch`` command line.

Each pipeline stage adds its commands in its own module below; ``base`` holds the group,
logging set-up and the one place where domain errors become exit codes. Importing this
package registers every command on ``main``.
"""

from figsearch.cli.base import EXIT_ERROR, collection_option, json_option, main  # noqa: F401

# Commands register themselves on ``main`` when their module is imported.
from figsearch.cli import (  # noqa: E402,F401
    backup_cmd, build_cmd, evaluate_cmd, index_cmd, info_cmd, ingest_cmd, ocr_cmd, remove_cmd, search_cmd, serve_cmd,
    show_cmd, train_cmd,
)
