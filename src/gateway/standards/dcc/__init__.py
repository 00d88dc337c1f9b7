"""Digital Calibration Certificates (PTB DCC 3.1.2) in the registry.

Import (``etalon standards import-dcc``, ``POST /api/v1/standards/{id}/certificates`` with an XML
body): the document is validated against the shipped schema (refused with the schema's own
message and line), its signature verified against the configured trust anchors (an invalid one
refused unless accepted explicitly, the verdict recorded either way), then extracted into the
registry — the certificate's number, laboratory, dates, the item as the standard (created from
it when not registered), and every result as a certificate point with its exact decimal text,
unit, U, k, p and conditions — and the original bytes are kept byte for byte.

Export (``etalon standards export-dcc``, ``GET …/certificates/{n}/dcc``): a DCC 3.1.2 document
built from the registry rows alone (values exactly as registered), signed with the lab's key
when configured. Import → export → import gives identical registry rows. The mapping both ways
is in docs/records.md.
"""

from gateway.standards.dcc.exporter import export_dcc, rebuild
from gateway.standards.dcc.importer import (
    MAX_DCC_BYTES,
    DccImported,
    SignatureRefused,
    import_dcc,
    load_anchors,
    plan_import,
)

__all__ = [
    "MAX_DCC_BYTES",
    "DccImported",
    "SignatureRefused",
    "export_dcc",
    "import_dcc",
    "load_anchors",
    "plan_import",
    "rebuild",
]
