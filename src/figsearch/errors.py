"""Domain exceptions, in one place.

Library code raises these; only the edges (the CLI and the HTTP server) turn
them into exit codes and HTTP statuses. Every message names the input at fault
and what was expected, so that a user can act on it without a traceback.
"""

from __future__ import annotations


class FigsearchError(Exception):
    """Base of every error figsearch reports to a user."""

    #: HTTP status the server answers with; the CLI exits non-zero for all
    http_status = 500
    #: short machine-readable code for the JSON error shape
    code = "error"


class InputError(FigsearchError):
    """A file, an argument or a request is not what was expected."""

    http_status = 400
    code = "bad_input"


class UnsupportedFormat(InputError):
    """A document or image in a format figsearch does not read (with the reason)."""

    code = "unsupported_format"


class CorruptInput(InputError):
    """A file of a known format that cannot be decoded (truncated, malformed, a bomb)."""

    code = "corrupt_input"


class ImageTooLarge(CorruptInput):
    """An image (or a PDF page, or an image inside one) over the pixel limit: a possible bomb.

    ``size`` is (width, height) when the header told it, ``limit`` the pixel limit it broke.
    """

    def __init__(self, message: str, *, size: tuple[int, int] | None = None, limit: int | None = None) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class NotFound(FigsearchError):
    """An unknown figure id, patent number or collection."""

    http_status = 404
    code = "not_found"


class MissingDependency(FigsearchError):
    """An optional extra is not installed; the message names the install command."""

    http_status = 501
    code = "missing_dependency"


class ModelUnavailable(FigsearchError):
    """Model weights cannot be found locally and cannot be downloaded; says what to do."""

    http_status = 503
    code = "model_unavailable"


class CollectionError(FigsearchError):
    """The collection directory is missing, of another version, locked or inconsistent."""

    http_status = 409
    code = "collection_error"


class CollectionLocked(CollectionError):
    """Another process is writing to the collection."""

    code = "collection_locked"


class EmptyCollection(CollectionError):
    """A search or evaluation on a collection with nothing (of the needed kind) in it."""

    code = "empty_collection"
