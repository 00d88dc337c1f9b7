"""Floor 1: instrument drivers and simulated instruments.

Drivers speak one protocol family each, hold no buffers and no retry loops, and map every
library exception to the :mod:`core.errors` tree at their boundary.
"""
