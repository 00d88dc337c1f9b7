-- The hub's first schema: enrolled labs and their keys, each lab's ledger as it arrived (entries
-- and checkpoints, verified before they were stored), refused pushes, the hub's own audit chain,
-- certificate files as received, and the query tables projected from the entries.
--
-- Shipped: never edit this file. Change the schema in a new file (002_….sql).

-- Substring search on serial numbers and models (a trusted extension: the database's owner may
-- create it, no superuser needed on PostgreSQL 13+ or a managed service).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- -- labs -----------------------------------------------------------------------------------------

CREATE TABLE labs (
    id text PRIMARY KEY,                 -- the lab's ledger id
    name text NOT NULL,
    province text,
    country text NOT NULL DEFAULT 'VN',
    contact text,
    token_sha256 text NOT NULL UNIQUE,   -- SHA-256 of the push token; the token itself is shown once
    enrolled_ns bigint NOT NULL,
    enrolled_by text NOT NULL,
    revoked_ns bigint,
    revoked_by text,
    revoked_reason text
);

CREATE TABLE lab_keys (
    lab text NOT NULL REFERENCES labs(id),
    key_id text NOT NULL,
    public_key text NOT NULL,            -- base64 of the 32 raw bytes
    source text NOT NULL CHECK (source IN ('enrolled', 'rotation')),
    added_ns bigint NOT NULL,
    added_seq bigint,                    -- the key_rotation entry that brought it
    PRIMARY KEY (lab, key_id)
);

-- Where each lab's chain stands at the hub: the cursor a lab pushes from.
CREATE TABLE lab_heads (
    lab text PRIMARY KEY REFERENCES labs(id),
    count bigint NOT NULL DEFAULT 0,
    hash text NOT NULL,
    ts_ns bigint NOT NULL DEFAULT 0,
    key_id text,
    pushes bigint NOT NULL DEFAULT 0,
    refusals bigint NOT NULL DEFAULT 0,
    last_push_ns bigint,
    last_refusal_ns bigint
);

-- -- the labs' ledgers ----------------------------------------------------------------------------

-- One chain per lab, as docs/ledger.md stores it; body_json is the canonical text that was hashed.
CREATE TABLE entries (
    lab text NOT NULL REFERENCES labs(id),
    seq bigint NOT NULL,
    ts_ns bigint NOT NULL,
    kind text NOT NULL,
    subject text NOT NULL,
    actor text NOT NULL,
    body_json text NOT NULL,
    prev text NOT NULL,
    hash text NOT NULL UNIQUE,
    received_ns bigint NOT NULL,
    PRIMARY KEY (lab, seq)
);
CREATE INDEX entries_by_subject ON entries (lab, kind, subject, seq);

CREATE TABLE checkpoints (
    lab text NOT NULL REFERENCES labs(id),
    count bigint NOT NULL,
    key_id text NOT NULL,
    line text NOT NULL,                  -- the checkpoint's canonical JSON, as signed
    received_ns bigint NOT NULL,
    PRIMARY KEY (lab, count, key_id)
);

-- Pushes the hub refused, with the reason (shown to the hub's operators).
CREATE TABLE refusals (
    id bigserial PRIMARY KEY,
    lab text NOT NULL REFERENCES labs(id),
    received_ns bigint NOT NULL,
    reason text NOT NULL,
    code text NOT NULL,
    params text NOT NULL DEFAULT '{}',   -- JSON: the message's values
    from_seq bigint,
    to_seq bigint,
    entries integer,
    segment_sha256 text,
    finding text,                        -- JSON: the verifier's finding, when the chain is at fault
    remote text
);
CREATE INDEX refusals_by_lab ON refusals (lab, id);

-- Certificate files (DCC XML, PDF) as a lab's gateway received them, referenced by hash from
-- its certificate entries.
CREATE TABLE attachments (
    sha256 text PRIMARY KEY,
    media_type text NOT NULL,
    size integer NOT NULL,
    content bytea NOT NULL,
    lab text NOT NULL REFERENCES labs(id),  -- the lab that pushed it first
    received_ns bigint NOT NULL
);

-- -- the hub's own audit chain (hash-chained and signed with the hub's key, docs/ledger.md) -------

CREATE TABLE hub_audit (
    seq bigint PRIMARY KEY,
    ts_ns bigint NOT NULL,
    kind text NOT NULL,
    subject text NOT NULL,
    actor text NOT NULL,
    body_json text NOT NULL,
    prev text NOT NULL,
    hash text NOT NULL UNIQUE
);
CREATE TABLE hub_audit_checkpoints (
    count bigint NOT NULL,
    key_id text NOT NULL,
    line text NOT NULL,
    PRIMARY KEY (count, key_id)
);

-- -- query tables, projected from the entries -----------------------------------------------------

CREATE TABLE standards (
    lab text NOT NULL REFERENCES labs(id),
    standard_id text NOT NULL,
    kind text,
    description text,
    nominal text,
    unit text,
    manufacturer text,
    model text,
    serial text,
    owner_lab text,
    status text,
    entry_seq bigint NOT NULL,
    updated_ns bigint NOT NULL,
    PRIMARY KEY (lab, standard_id)
);

CREATE TABLE certificates (
    lab text NOT NULL REFERENCES labs(id),
    certificate_id text NOT NULL,        -- the lab's own id of the certificate
    standard_id text,
    number text,
    issuer text,
    calibration_date text,
    calibration_ns bigint,
    due_date text,
    due_ns bigint,
    value text,
    unit text,
    expanded_uncertainty text,
    coverage_factor text,
    file_name text,
    file_sha256 text,
    media_type text,
    signature text,                      -- JSON: the signature verdict the lab recorded
    entry_seq bigint NOT NULL,
    PRIMARY KEY (lab, certificate_id)
);
CREATE INDEX certificates_by_standard ON certificates (lab, standard_id, calibration_ns);
CREATE INDEX certificates_by_file ON certificates (file_sha256);
CREATE INDEX certificates_by_number ON certificates (lower(issuer), number);

CREATE TABLE instruments (
    lab text NOT NULL REFERENCES labs(id),
    instrument text NOT NULL,            -- SITE/AGENT/INSTRUMENT at the lab
    manufacturer text,
    model text,
    serial text,
    firmware text,
    first_seen_ns bigint,
    entry_seq bigint NOT NULL,
    PRIMARY KEY (lab, instrument)
);

-- Every identity an instrument has had (never overwritten).
CREATE TABLE instrument_identities (
    lab text NOT NULL REFERENCES labs(id),
    entry_seq bigint NOT NULL,
    instrument text NOT NULL,
    manufacturer text,
    model text,
    serial text,
    firmware text,
    first_seen_ns bigint,
    PRIMARY KEY (lab, entry_seq)
);
CREATE INDEX identities_by_instrument ON instrument_identities (lab, instrument, entry_seq);

CREATE TABLE calibrations (
    lab text NOT NULL REFERENCES labs(id),
    run text NOT NULL,
    instrument text,
    serial text,
    procedure_id text,
    decision text,
    started_ns bigint,
    finished_ns bigint,
    due_ns bigint,
    entry_seq bigint NOT NULL,
    PRIMARY KEY (lab, run)
);
CREATE INDEX calibrations_by_serial ON calibrations (lab, serial, finished_ns);

-- The latest summary of each subject's stability and drift evaluation.
CREATE TABLE evaluations (
    lab text NOT NULL REFERENCES labs(id),
    subject text NOT NULL,
    kind text NOT NULL,
    ts_ns bigint NOT NULL,
    summary text NOT NULL,               -- JSON as the lab recorded it
    entry_seq bigint NOT NULL,
    PRIMARY KEY (lab, subject)
);

-- One row per instrument and standard of every lab: what the search reads (indexed for millions).
CREATE TABLE registry (
    id bigserial PRIMARY KEY,
    lab text NOT NULL REFERENCES labs(id),
    item_type text NOT NULL CHECK (item_type IN ('instrument', 'standard')),
    item_key text NOT NULL,
    kind text,
    manufacturer text,
    model text,
    serial text,
    description text,
    status text NOT NULL DEFAULT 'active',
    province text,                       -- the lab's, copied for a one-table search
    due_ns bigint,                       -- next calibration due, when known
    calibrated_ns bigint,
    entry_seq bigint NOT NULL,
    UNIQUE (lab, item_type, item_key)
);
CREATE INDEX registry_serial ON registry (lower(serial) text_pattern_ops, id);
CREATE INDEX registry_serial_trgm ON registry USING gin (lower(serial) gin_trgm_ops);
CREATE INDEX registry_model_trgm ON registry USING gin (lower(model) gin_trgm_ops);
CREATE INDEX registry_lab ON registry (lab, id);
CREATE INDEX registry_lab_due ON registry (lab, due_ns);
CREATE INDEX registry_province ON registry (province, id);
CREATE INDEX registry_kind ON registry (kind, id);
CREATE INDEX registry_status ON registry (status, id);

-- -- traceability -------------------------------------------------------------------------------

-- A standard is calibrated by (traceable to) another lab's standard, a national standard, or a
-- BIPM key comparison / CMC. 'certificate' links come from the labs' certificate entries (a
-- DCC's measuring equipment, the registry's traceability); 'institute' links are typed in by the
-- national institute (etalon hub link).
CREATE TABLE trace_links (
    id bigserial PRIMARY KEY,
    source text NOT NULL CHECK (source IN ('certificate', 'institute')),
    from_lab text NOT NULL REFERENCES labs(id),
    from_standard text NOT NULL,
    to_kind text NOT NULL CHECK (to_kind IN ('standard', 'national', 'kcdb_comparison', 'cmc')),
    to_lab text,                          -- as named (an enrolled lab's id or name, or another's)
    to_standard text,
    to_ref text,                          -- a KCDB comparison or CMC identifier, a designation
    certificate text,                     -- the certificate that makes the link
    valid_until_ns bigint,
    note text,
    lab_certificate text,                 -- (source 'certificate') the lab's certificate id
    entry_seq bigint,
    created_ns bigint NOT NULL,
    created_by text NOT NULL,
    withdrawn_ns bigint,
    withdrawn_by text,
    withdrawn_reason text
);
CREATE INDEX trace_links_from ON trace_links (from_lab, from_standard);
CREATE INDEX trace_links_to ON trace_links (to_lab, to_standard);
CREATE INDEX trace_links_certificate ON trace_links (from_lab, lab_certificate);
