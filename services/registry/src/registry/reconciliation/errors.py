"""Problems of reconciliation imports."""

from __future__ import annotations

from shared.errors import Forbidden, NotFound, UnprocessableContent

__all__ = ["ImportNotFound", "ImportsAreNational", "InvalidImportFile"]


class ImportNotFound(NotFound):
    type = "import-not-found"
    title = "Import not found"


class ImportsAreNational(Forbidden):
    type = "imports-are-national"
    title = "Reconciliation imports need a national token (no regions claim)"


class InvalidImportFile(UnprocessableContent):
    type = "invalid-import-file"
    title = "The file is not a DTSEN CSV"
