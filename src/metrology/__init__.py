"""Floor 2: metrology as data — DCC certificates, units, uncertainty budgets, decision rules."""
