"""Logging configuration, called only from entry points (pynetdicom's habit).

Records about a study carry its Study Instance UID; patient names, IDs and
birth dates are never logged. :class:`PhiFilter` is a last line of defence that
masks values of the common PHI keywords if a library logs a dataset.
"""

from __future__ import annotations

import logging
import re
import sys

_PHI_RE = re.compile(
    r"(?P<key>Patient(?:'s)?\s?(?:Name|ID|BirthDate|Birth Date|Address)|\(0010,\s?00(?:10|20|30)\))"
    r"(?P<sep>\W{1,40}?)(?P<value>[^\n,;]*)",
    re.IGNORECASE,
)

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(processName)s %(name)s: %(message)s"


class PhiFilter(logging.Filter):
    """Mask anything that looks like a patient name / ID / birth date value."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _PHI_RE.search(message):
            record.msg = _PHI_RE.sub(lambda m: f"{m['key']}{m['sep']}<redacted>", message)
            record.args = None
        return True


def configure_logging(verbose: int = 0, stream: object = None) -> None:
    level = logging.WARNING if verbose < 0 else (logging.INFO if verbose < 2 else logging.DEBUG)
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(PhiFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pynetdicom is chatty at INFO (it logs whole association negotiations).
    logging.getLogger("pynetdicom").setLevel(logging.WARNING if verbose < 3 else logging.DEBUG)
