"""Digital Calibration Certificates (PTB DCC 3.1.2): validate, read, write, sign and verify.

::

    from metrology import dcc

    dcc.validate(xml_bytes)                        # None, or DccInvalid / DccUnsafe
    certificate = dcc.parse(xml_bytes)             # -> Dcc (validated first)
    for point in certificate.points(): ...         # every value with U, k, p and conditions
    document = dcc.build(certificate)              # -> bytes, valid against the shipped XSD
    signed = dcc.sign(document, key=..., certificates=[cert, *chain])
    verdict = dcc.verify(signed, anchors=[ca_cert])  # valid | invalid | untrusted | unsigned

The schemas (DCC 3.1.2, D-SI 2.1.0, W3C XML signature) ship in ``schemas/``; nothing touches the
network. The caller keeps a document's original bytes: nothing here rewrites them.
"""

from metrology.dcc.model import (
    CertificateReference,
    Condition,
    Contact,
    CoverageInterval,
    Dcc,
    ExpandedUncertainty,
    Identification,
    InfluenceCondition,
    Item,
    Laboratory,
    LocalizedText,
    Location,
    MeasurementResult,
    MeasuringEquipment,
    Point,
    Quantity,
    QuantityList,
    ResponsiblePerson,
    Result,
    Software,
    Statement,
    Text,
    UsedMethod,
    Value,
)
from metrology.dcc.reader import parse
from metrology.dcc.safexml import MAX_DCC_BYTES
from metrology.dcc.schema import validate
from metrology.dcc.signature import (
    SignatureVerdict,
    SignerInfo,
    load_certificates,
    sign,
    verify,
)
from metrology.dcc.writer import build
from metrology.errors import DccError, DccInvalid, DccUnsafe, SignatureError, UnsupportedUnit

__all__ = [
    "MAX_DCC_BYTES",
    "CertificateReference",
    "Condition",
    "Contact",
    "CoverageInterval",
    "Dcc",
    "DccError",
    "DccInvalid",
    "DccUnsafe",
    "ExpandedUncertainty",
    "Identification",
    "InfluenceCondition",
    "Item",
    "Laboratory",
    "LocalizedText",
    "Location",
    "MeasurementResult",
    "MeasuringEquipment",
    "Point",
    "Quantity",
    "QuantityList",
    "ResponsiblePerson",
    "Result",
    "SignatureError",
    "SignatureVerdict",
    "SignerInfo",
    "Software",
    "Statement",
    "Text",
    "UnsupportedUnit",
    "UsedMethod",
    "Value",
    "build",
    "load_certificates",
    "parse",
    "sign",
    "validate",
    "verify",
]
