"""Record-store tables of calibrated instruments (feature key ``corrections`` of
``records.MIGRATIONS``).

- ``instrument_certificates``: a working instrument's certificate (a DCC), its item
  identification, validity, the calibration tables extracted from it (exact decimal text) and
  the original document byte for byte with its SHA-256. Chained in the ledger
  (``instrument_certificate``) without the document itself, whose hash the body carries.
- ``calibration_links``: which certificate table corrects which channel, from when until when
  (``until_ns`` NULL while in force), the serial matched at link time, who linked and unlinked.
  A replaced certificate ends one link and starts the next at the same instant, so every stored
  corrected value maps to exactly one link. Chained (``calibration_link``) at every change.

Append steps; never edit a step that has shipped.
"""

from __future__ import annotations

CORRECTIONS_MIGRATIONS = [
    """
    CREATE TABLE instrument_certificates (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        number TEXT NOT NULL,
        issuer TEXT NOT NULL,
        manufacturer TEXT, model TEXT, serial TEXT,
        calibration_date TEXT NOT NULL,
        due_date TEXT,
        due_ns INTEGER,
        tables TEXT NOT NULL,
        signature TEXT NOT NULL,
        file_name TEXT,
        file_sha256 TEXT NOT NULL,
        file_size INTEGER NOT NULL,
        document BLOB NOT NULL,
        created_ns INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        UNIQUE (issuer, number)
    );
    CREATE TABLE calibration_links (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        site TEXT NOT NULL, agent TEXT NOT NULL, instrument TEXT NOT NULL, channel TEXT NOT NULL,
        certificate_id INTEGER NOT NULL REFERENCES instrument_certificates(id),
        table_index INTEGER NOT NULL,
        serial TEXT NOT NULL,
        from_ns INTEGER NOT NULL,
        until_ns INTEGER,
        linked_by TEXT NOT NULL,
        unlinked_by TEXT
    );
    CREATE INDEX calibration_links_by_channel
        ON calibration_links(site, agent, instrument, channel, from_ns);
    CREATE TRIGGER calibration_links_no_delete BEFORE DELETE ON calibration_links
        BEGIN SELECT RAISE(ABORT, 'a calibration link is never deleted'); END;
    CREATE TRIGGER instrument_certificates_no_delete BEFORE DELETE ON instrument_certificates
        BEGIN SELECT RAISE(ABORT, 'an instrument certificate is never deleted'); END;
    """,
]
"""Append steps; never edit one that has shipped."""
