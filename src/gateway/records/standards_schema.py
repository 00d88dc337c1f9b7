"""The registry's tables in the record store (feature key ``standards`` of records.MIGRATIONS).

Append steps; never edit a step that has shipped.
"""

from __future__ import annotations

STANDARDS_MIGRATIONS = [
    """
    CREATE TABLE standards (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        description TEXT,
        nominal REAL NOT NULL,
        unit TEXT NOT NULL,
        manufacturer TEXT, model TEXT, serial TEXT,
        owner_lab TEXT NOT NULL,
        tolerance TEXT,
        status TEXT NOT NULL DEFAULT 'active',
        analysis TEXT NOT NULL DEFAULT '{}',
        created_ns INTEGER NOT NULL,
        updated_ns INTEGER NOT NULL
    );
    CREATE TABLE standard_channels (
        standard_id TEXT NOT NULL REFERENCES standards(id),
        site TEXT NOT NULL, agent TEXT NOT NULL, instrument TEXT NOT NULL, channel TEXT NOT NULL,
        unit TEXT NOT NULL,
        scale REAL NOT NULL DEFAULT 1.0,
        "offset" REAL NOT NULL DEFAULT 0.0,
        note TEXT,
        position INTEGER NOT NULL,
        PRIMARY KEY (standard_id, site, agent, instrument, channel)
    );
    CREATE TABLE certificates (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        standard_id TEXT NOT NULL REFERENCES standards(id),
        number TEXT NOT NULL,
        issuer TEXT NOT NULL,
        calibration_date TEXT NOT NULL,
        calibration_ns INTEGER NOT NULL,
        due_date TEXT,
        due_ns INTEGER,
        value REAL NOT NULL,
        expanded_uncertainty REAL NOT NULL,
        coverage_factor REAL NOT NULL,
        conditions TEXT NOT NULL DEFAULT '{}',
        notes TEXT,
        file_name TEXT,
        file_sha256 TEXT,
        file_size INTEGER,
        media_type TEXT,
        created_ns INTEGER NOT NULL,
        updated_ns INTEGER NOT NULL,
        UNIQUE (issuer, number)
    );
    CREATE INDEX certificates_by_standard ON certificates(standard_id, calibration_ns);
    CREATE TABLE certificate_traceability (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        certificate_id INTEGER NOT NULL REFERENCES certificates(id) ON DELETE CASCADE,
        parent_id INTEGER REFERENCES certificate_traceability(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        lab TEXT NOT NULL,
        standard TEXT NOT NULL,
        description TEXT,
        certificate TEXT,
        national INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX traceability_by_certificate ON certificate_traceability(certificate_id);
    CREATE TABLE standard_results (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        standard_id TEXT NOT NULL,
        ts_ns INTEGER NOT NULL,
        summary TEXT NOT NULL
    );
    CREATE INDEX standard_results_by_standard ON standard_results(standard_id, ts_ns);
    CREATE TABLE standard_latest (
        standard_id TEXT PRIMARY KEY,
        ts_ns INTEGER NOT NULL,
        result TEXT NOT NULL
    );
    """,
    # Digital Calibration Certificates: the certified value, U, k and p as the exact decimal
    # text they were registered with (REAL keeps the float for computing), the DCC's registry
    # fields and the signature verdict at import (JSON), and every result of the certificate as
    # a point with its unit and conditions.
    """
    ALTER TABLE certificates ADD COLUMN value_text TEXT;
    ALTER TABLE certificates ADD COLUMN expanded_uncertainty_text TEXT;
    ALTER TABLE certificates ADD COLUMN coverage_factor_text TEXT;
    ALTER TABLE certificates ADD COLUMN coverage_probability TEXT;
    ALTER TABLE certificates ADD COLUMN dcc TEXT;
    ALTER TABLE certificates ADD COLUMN signature TEXT;
    CREATE TABLE certificate_points (
        certificate_id INTEGER NOT NULL REFERENCES certificates(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        path TEXT NOT NULL,
        measurement_result TEXT NOT NULL,
        result TEXT NOT NULL,
        quantity TEXT,
        ref_types TEXT NOT NULL DEFAULT '[]',
        row_index INTEGER,
        value TEXT NOT NULL,
        unit TEXT NOT NULL,
        dsi_unit TEXT NOT NULL,
        expanded_uncertainty TEXT,
        coverage_factor TEXT,
        coverage_probability TEXT,
        distribution TEXT,
        label TEXT,
        date_time TEXT,
        coverage_interval TEXT,
        conditions TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (certificate_id, position)
    );
    """,
]
