"""User queries: findings a site adds at run time, by sentences, without retraining.

A queries file (JSON or TOML) maps a finding id to one sentence or a list of
paraphrases, e.g. ``{"arachnoid_cyst": ["arachnoid cyst", "extra-axial cyst"]}``.
The bundle embeds the sentences on the fly (cached) and scores them like its own
findings (:meth:`pipeline.model.ModelBundle.score`); having no operating point
calibrated on validation data, they are reported with their score and *not
called* present or absent, in the JSON output and in the SR.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from dicom_node.errors import ConfigError

#: A user finding id: what the SR's tracking identifier and private code are built from.
FINDING_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def read_queries(path: Path) -> dict[str, list[str]]:
    """User queries from a JSON or TOML file: finding id -> sentences.

    Raises:
        ConfigError: unreadable file, not a mapping of ids to sentence lists, an id
            that is not lower-case ``[a-z][a-z0-9_]*`` (at most 64 characters), or a
            finding without a non-empty sentence.
    """
    try:
        text = path.read_text(encoding="utf-8")
        raw: Any = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"queries file {str(path)!r} cannot be read: {exc}") from exc
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"queries file {str(path)!r} must map finding ids to sentence lists")
    queries: dict[str, list[str]] = {}
    for fid, sentences in raw.items():
        if not FINDING_ID.match(str(fid)):
            raise ConfigError(
                f"queries file {str(path)!r}: finding id {str(fid)[:80]!r} must be lower-case "
                "letters, digits and '_', starting with a letter (at most 64 characters)"
            )
        if isinstance(sentences, str):
            sentences = [sentences]
        if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
            raise ConfigError(
                f"queries file {str(path)!r}: {fid!r} must be a sentence or a list of sentences"
            )
        kept = [s.strip() for s in sentences if s.strip()]
        if not kept:
            raise ConfigError(f"queries file {str(path)!r}: {fid!r} has no sentence")
        queries[str(fid)] = kept
    return queries
