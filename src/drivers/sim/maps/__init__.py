"""Register maps of the simulated Modbus devices (YAML, loaded by name)."""
