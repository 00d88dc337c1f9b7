"""``etalon demo``: the whole chain in one process on embedded defaults."""
