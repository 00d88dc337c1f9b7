"""Size limits a caller applies before handing a document to the metrology library.

Kept apart from ``metrology.dcc`` on purpose: importing this module loads no XML library
(xmlschema, signxml, elementpath), so a process that only bounds an upload (the gateway's
start) pays nothing for it.
"""

from __future__ import annotations

MAX_DCC_BYTES = 32 * 1024 * 1024
"""Default size limit of a DCC: large enough for one with an embedded PDF, small enough to
refuse a flood before it is parsed."""
