"""Import and export of the registry: YAML/JSON documents and CSV files.

Import validates everything first -- every row's fields, the references between rows and to
what is registered, every certificate file and its hash -- and imports nothing if anything is
wrong: each problem is one line ``FILE:LINE: field: reason``. Then one transaction adds the
standards, channel links and certificates, each with its audit-log entry.

CSV files are one of two kinds, told apart by their header:

- standards (``id, kind, nominal, unit, owner_lab`` …): ``tolerance`` in the compact form
  (``±2 ppm``, ``±1 µV/V + 1 µV/V/year``), ``channels`` as ``[SITE:]AGENT/INSTRUMENT/CHANNEL
  [UNIT] scale=S offset=O`` entries separated by ``;``;
- certificates (``standard, number, issuer, calibration_date, value, expanded_uncertainty,
  coverage_factor`` …): ``traceable_to`` as branches separated by ``;``, each a chain of levels
  ``LAB | STANDARD | CERTIFICATE | national`` separated by ``>`` (descriptions only in YAML).


The parts: :mod:`.columns` (CSV columns, one-cell text forms), :mod:`.reading` (files into
items), :mod:`.applying` (checked against the registry, then written) and :mod:`.export`.
"""

from gateway.standards.transfer.applying import (
    ImportSummary,
    import_into,
    read_certificate_files,
)
from gateway.standards.transfer.columns import (
    CERTIFICATE_COLUMNS,
    STANDARD_COLUMNS,
    format_channels,
    format_traceability,
    parse_channels,
    parse_traceability,
)
from gateway.standards.transfer.export import (
    export_certificates_csv,
    export_document,
    export_json,
    export_standards_csv,
)
from gateway.standards.transfer.reading import (
    Item,
    ParsedImport,
    Where,
    parse_import,
)

__all__ = [
    "CERTIFICATE_COLUMNS",
    "STANDARD_COLUMNS",
    "ImportSummary",
    "Item",
    "ParsedImport",
    "Where",
    "export_certificates_csv",
    "export_document",
    "export_json",
    "export_standards_csv",
    "format_channels",
    "format_traceability",
    "import_into",
    "parse_channels",
    "parse_import",
    "parse_traceability",
    "read_certificate_files",
]
