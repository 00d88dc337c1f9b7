"""The registry of reference standards in the record store.

Every change is one short SQLite transaction that also appends its audit-log entry (who, what,
the record before and after), so the change and its audit entry exist together or not at all.
Readers (the gateway's analytics, the API, ``etalon standards``) may run in other processes:
the record store is in WAL mode.


The parts: :mod:`.records` (what is read back), :mod:`.reading`, :mod:`.writing`,
:mod:`.traceability` and :mod:`.face` (the async :class:`Registry`).
"""

from gateway.standards.registry.face import (
    Registry,
)
from gateway.standards.registry.reading import (
    certificate_id_of,
    load_certificate,
    load_certificates,
    load_standard,
    load_standards,
)
from gateway.standards.registry.records import (
    CertificateExtras,
    CertificatePoint,
    CertificateRecord,
    FileInfo,
    NewCertificate,
    StandardRecord,
    TraceabilityChain,
    TraceView,
)
from gateway.standards.registry.traceability import (
    traceability_chain,
)
from gateway.standards.registry.writing import (
    attach_file,
    audit,
    insert_certificate,
    insert_standard,
    same_certificate,
    transaction,
    update_certificate,
    update_standard,
)

__all__ = [
    "CertificateExtras",
    "CertificatePoint",
    "CertificateRecord",
    "FileInfo",
    "NewCertificate",
    "Registry",
    "StandardRecord",
    "TraceView",
    "TraceabilityChain",
    "attach_file",
    "audit",
    "certificate_id_of",
    "insert_certificate",
    "insert_standard",
    "load_certificate",
    "load_certificates",
    "load_standard",
    "load_standards",
    "same_certificate",
    "traceability_chain",
    "transaction",
    "update_certificate",
    "update_standard",
]
