"""Records a quality system keeps (ISO/IEC 17025 §7.5, §7.11): the record store — agents,
channels, instrument states, the append-only audit log — and the schema of every record table,
the features' own (standards, alerts) included."""
