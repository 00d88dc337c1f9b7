"""Floor 2: the record ledger — canonical content, hash chain, signed checkpoints, verification."""
