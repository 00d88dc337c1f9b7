"""Signing a DCC with a laboratory's X.509 key, and verifying a signed DCC.

**Where the signature goes.** DCC 3.1.2 has no ``ds:Signature`` slot of its own (3.2.0 added
one after ``dcc:document``); its ``dcc:comment`` ring takes any element, processed strictly. The
signature is therefore placed in ``dcc:comment`` (created when absent) and the document stays
valid against the 3.1.2 schema (with the W3C XML-signature schema, which is shipped and loaded).
It is an *enveloped* signature over the whole document (``URI=""``, the enveloped-signature
transform, canonical XML 1.1), SHA-256, RSA or ECDSA, with the signer's certificate
chain in ``ds:KeyInfo``, and by default XAdES-BES qualifying properties (signing time and the
signing certificate's digest, signed with the document) — signxml's ``signxml.xades``.

**How a signature is judged** (:func:`verify`), in this order:

1. no ``ds:Signature`` → ``unsigned``;
2. the signature must be one, placed in ``dcc:comment`` (or, as DCC 3.2 and later place it, as
   a child of the root), cover the whole document, and verify cryptographically with the key of
   the certificate it carries (and its XAdES properties must match that certificate) — else
   ``invalid``: the document or the signature was changed after signing;
3. the signer's certificate must chain to one of the configured trust anchors (CA
   certificates, or the signer's certificate itself), valid at the time of the check — else
   ``untrusted``, with the reason (no anchor, unknown issuer, expired: an expired certificate is
   named as such, with the claimed signing time, which no time-stamp proves);
4. otherwise ``valid``, with the signer's subject, serial and fingerprint.

Revocation (CRL/OCSP) is not checked: the machines are offline. A document is only ever read
with the safe parser; nothing is fetched.

Longer than 500 lines on purpose: signing and verifying share the placement rules, the
canonicalisation and the XAdES properties.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import verification
from lxml import etree
from pydantic import Field
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.exceptions import SignXMLException
from signxml.signer import XMLSigner
from signxml.verifier import SignatureConfiguration, XMLVerifier
from signxml.xades.xades import XAdESSignatureConfiguration, XAdESSigner, XAdESVerifier

from metrology.dcc.messages import text
from metrology.dcc.model import FrozenModel
from metrology.dcc.safexml import MAX_DCC_BYTES, parse_xml
from metrology.dcc.schema import DCC_NS, DS_NS, ROOT_TAG, check_root, validate_tree
from metrology.errors import DccInvalid, SignatureError

XADES_NS = "http://uri.etsi.org/01903/v1.3.2#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
Status = Literal["valid", "invalid", "untrusted", "unsigned"]

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class SignerInfo(FrozenModel):
    """The certificate a DCC was signed with."""

    subject: str = Field(..., description="RFC 4514, e.g. 'CN=VMI DCC signing,O=VMI,C=VN'.")
    issuer: str
    serial_number: str = Field(..., description="Hexadecimal, upper case, no separators.")
    sha256_fingerprint: str = Field(..., description="Of the DER certificate, hexadecimal.")
    not_before: dt.datetime
    not_after: dt.datetime

    @classmethod
    def of(cls, certificate: x509.Certificate) -> SignerInfo:
        """Describe a certificate."""
        return cls(
            subject=certificate.subject.rfc4514_string(),
            issuer=certificate.issuer.rfc4514_string(),
            serial_number=format(certificate.serial_number, "X"),
            sha256_fingerprint=certificate.fingerprint(hashes.SHA256()).hex(),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
        )


class SignatureVerdict(FrozenModel):
    """What :func:`verify` found: a status, the reason a person can act on, who signed and
    when it was checked. ``code`` is the message key (:meth:`message` in English or
    Vietnamese)."""

    status: Status
    code: str
    reason: str
    signer: SignerInfo | None = None
    signing_time: dt.datetime | None = Field(
        None, description="XAdES SigningTime: the signer's own claim, not a time-stamp."
    )
    xades: bool = False
    certificate_expired: bool = Field(
        False, description="The signer's certificate was outside its validity at checked_at."
    )
    checked_at: dt.datetime

    def message(self, lang: str = "en") -> str:
        """The verdict for a person, in ``lang``."""
        return text(
            self.code,
            lang,
            reason=self.reason,
            signer=self.signer.subject if self.signer else "?",
            checked_at=self.checked_at.isoformat(timespec="seconds"),
        )


# -- keys and certificates ---------------------------------------------------------------------


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM file (a bundle of trust anchors, a chain)."""
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise SignatureError(f"not a PEM certificate file: {exc}") from exc


def _certificates(items: Sequence[x509.Certificate | bytes]) -> list[x509.Certificate]:
    found: list[x509.Certificate] = []
    for item in items:
        found += load_certificates(item) if isinstance(item, bytes) else [item]
    return found


def _private_key(key: PrivateKey | bytes, password: bytes | None) -> PrivateKey:
    if isinstance(key, bytes):
        try:
            loaded = serialization.load_pem_private_key(key, password=password)
        except (ValueError, TypeError) as exc:
            raise SignatureError(f"cannot read the private key: {exc}") from exc
    else:
        loaded = key
    if not isinstance(loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise SignatureError(
            f"a {type(loaded).__name__} cannot make an XML signature here: use an RSA "
            "(2048 bits or more) or ECDSA (P-256, P-384, P-521) key"
        )
    return loaded


def _algorithm(key: PrivateKey) -> SignatureMethod:
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise SignatureError(f"an RSA key of {key.key_size} bits is too short (2048 or more)")
        return SignatureMethod.RSA_SHA256
    curve = key.curve.name
    by_curve = {
        "secp256r1": SignatureMethod.ECDSA_SHA256,
        "secp384r1": SignatureMethod.ECDSA_SHA384,
        "secp521r1": SignatureMethod.ECDSA_SHA512,
    }
    if curve not in by_curve:
        raise SignatureError(f"ECDSA on {curve} is not supported (P-256, P-384, P-521)")
    return by_curve[curve]


def _same_key(key: PrivateKey, certificate: x509.Certificate) -> bool:
    def der(public: Any) -> bytes:
        return bytes(
            public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    return der(key.public_key()) == der(certificate.public_key())


# -- signing -----------------------------------------------------------------------------------


class _XAdESSigner(XAdESSigner):
    """signxml's XAdES-BES signer with a signing time we choose (it writes "now")."""

    signing_time: dt.datetime | None = None

    def add_signing_time(
        self, signed_signature_properties: Any, sig_root: Any, signing_settings: Any
    ) -> None:
        element = etree.SubElement(signed_signature_properties, f"{{{XADES_NS}}}SigningTime")
        moment = self.signing_time or dt.datetime.now(dt.UTC)
        element.text = (
            moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        )


def _signatures(root: etree._Element) -> list[etree._Element]:
    return list(root.iter(f"{{{DS_NS}}}Signature"))


def _comment(root: etree._Element) -> etree._Element:
    """The root's dcc:comment, created in its place (after measurementResults) if absent."""
    tag = f"{{{DCC_NS}}}comment"
    for child in root:
        if child.tag == tag:
            return child
    comment = etree.Element(tag)
    results = root.find(f"{{{DCC_NS}}}measurementResults")
    if results is None:
        raise DccInvalid("no dcc:measurementResults: not a DCC")
    results.addnext(comment)
    return comment


def sign(
    xml_bytes: bytes,
    *,
    key: PrivateKey | bytes,
    certificates: Sequence[x509.Certificate | bytes],
    password: bytes | None = None,
    xades: bool = True,
    signing_time: dt.datetime | None = None,
    max_bytes: int = MAX_DCC_BYTES,
) -> bytes:
    """A signed copy of a DCC 3.1.2 document: an enveloped XML signature in ``dcc:comment``
    with ``key``; ``certificates`` is the signer's certificate first, then its intermediates
    (all go into the signature). XAdES-BES unless ``xades=False``; ``signing_time`` defaults
    to now. The result is validated against the schema. Raises SignatureError, DccInvalid,
    DccUnsafe."""
    root = parse_xml(xml_bytes, max_bytes=max_bytes)
    check_root(root)
    if _signatures(root):
        raise SignatureError("the document is already signed (one signature per DCC)")
    private_key = _private_key(key, password)
    chain = _certificates(certificates)
    if not chain:
        raise SignatureError("the signer's certificate is needed")
    if not _same_key(private_key, chain[0]):
        raise SignatureError(
            f"the key does not belong to the certificate {chain[0].subject.rfc4514_string()}"
            " (give the signer's certificate first)"
        )
    moment = (signing_time or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    if not chain[0].not_valid_before_utc <= moment <= chain[0].not_valid_after_utc:
        raise SignatureError(
            f"the signer's certificate {chain[0].subject.rfc4514_string()} is not valid on "
            f"{moment.isoformat(timespec='seconds')} (valid from "
            f"{chain[0].not_valid_before_utc.isoformat()} to "
            f"{chain[0].not_valid_after_utc.isoformat()})"
        )
    _comment(root).append(etree.Element(f"{{{DS_NS}}}Signature", Id="placeholder"))
    options: dict[str, Any] = {
        "signature_algorithm": _algorithm(private_key),
        "digest_algorithm": DigestAlgorithm.SHA256,
        # Inclusive C14N 1.1 (signxml's default): the XAdES SignedProperties reference carries no
        # Transforms, so a verifier canonicalises it with the default method, not ours.
        "c14n_algorithm": CanonicalizationMethod.CANONICAL_XML_1_1,
    }
    signer: XMLSigner
    if xades:
        signer = _XAdESSigner(**options)
        signer.signing_time = moment
    else:
        signer = XMLSigner(**options)
    try:
        signed = signer.sign(
            root,
            key=private_key,
            cert=[c.public_bytes(serialization.Encoding.PEM).decode() for c in chain],
            always_add_key_value=False,
        )
    except (SignXMLException, ValueError) as exc:
        raise SignatureError(f"signing failed: {exc}") from exc
    validate_tree(signed)
    document: bytes = etree.tostring(signed.getroottree(), xml_declaration=True, encoding="UTF-8")
    return document


# -- verifying ---------------------------------------------------------------------------------


def _verdict(
    status: Status, code: str, reason: str, checked_at: dt.datetime, **fields: Any
) -> SignatureVerdict:
    return SignatureVerdict(
        status=status, code=code, reason=reason, checked_at=checked_at, **fields
    )


def _leaf(chain: list[x509.Certificate]) -> x509.Certificate:
    """The signer's certificate: the one that issued none of the others."""
    for candidate in chain:
        if not any(other is not candidate and other.issuer == candidate.subject for other in chain):
            return candidate
    return chain[0]


def _key_usage(policy: Any, certificate: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    if usage is not None and not (usage.digital_signature or usage.content_commitment):
        raise ValueError("the certificate's key usage allows no signatures")


def _trust(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    anchors: list[x509.Certificate],
    at: dt.datetime,
) -> str | None:
    """None when ``leaf`` chains to an anchor at ``at``; else the reason."""
    if not anchors:
        return "no trust anchors are configured: nobody's signature can be trusted"
    in_force = leaf.not_valid_before_utc <= at <= leaf.not_valid_after_utc
    der = leaf.public_bytes(serialization.Encoding.DER)
    if any(anchor.public_bytes(serialization.Encoding.DER) == der for anchor in anchors):
        return None if in_force else "outside its validity"
    ee_policy = verification.ExtensionPolicy.permit_all().may_be_present(
        x509.KeyUsage, verification.Criticality.AGNOSTIC, _key_usage
    )
    builder = (
        verification.PolicyBuilder()
        .store(verification.Store(anchors))
        .time(at)
        .extension_policies(
            ee_policy=ee_policy, ca_policy=verification.ExtensionPolicy.webpki_defaults_ca()
        )
    )
    try:
        builder.build_client_verifier().verify(leaf, intermediates)
    except verification.VerificationError as exc:
        return str(exc)
    return None


def _location(signature: etree._Element, root: etree._Element) -> str | None:
    parent = signature.getparent()
    if parent is root:
        return "./"
    if parent is not None and parent.tag == f"{{{DCC_NS}}}comment" and parent.getparent() is root:
        return f"./{{{DCC_NS}}}comment/"
    return None


def _covers_document(signature: etree._Element) -> bool:
    """Whether one reference is the whole document (URI="" with the enveloped transform)."""
    for reference in signature.iterfind(f"{{{DS_NS}}}SignedInfo/{{{DS_NS}}}Reference"):
        transforms = [
            t.get("Algorithm")
            for t in reference.iterfind(f"{{{DS_NS}}}Transforms/{{{DS_NS}}}Transform")
        ]
        if reference.get("URI") == "" and ENVELOPED in transforms:
            return True
    return False


def _signing_time(signature: etree._Element) -> dt.datetime | None:
    found = signature.find(f".//{{{XADES_NS}}}SignedSignatureProperties/{{{XADES_NS}}}SigningTime")
    if found is None or not (found.text or "").strip():
        return None
    try:
        moment = dt.datetime.fromisoformat((found.text or "").strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def verify(
    xml_bytes: bytes,
    *,
    anchors: Sequence[x509.Certificate | bytes],
    at: dt.datetime | None = None,
    max_bytes: int = MAX_DCC_BYTES,
) -> SignatureVerdict:
    """Judge the signature of a DCC document against ``anchors`` (CA certificates, or signers'
    certificates trusted directly) at ``at`` (default: now). Never raises for a bad signature —
    the verdict says what is wrong; raises DccUnsafe for input refused before parsing and
    DccInvalid for a document that is not a DCC."""
    checked_at = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    trusted = _certificates(anchors)
    root = parse_xml(xml_bytes, max_bytes=max_bytes)
    if root.tag != ROOT_TAG:
        check_root(root)
    signatures = _signatures(root)
    if not signatures:
        return _verdict(
            "unsigned", "dcc.signature.unsigned", "the document has no signature", checked_at
        )
    if len(signatures) > 1:
        return _verdict(
            "invalid",
            "dcc.signature.invalid",
            f"{len(signatures)} signatures in the document; one is expected",
            checked_at,
        )
    signature = signatures[0]
    location = _location(signature, root)
    if location is None:
        return _verdict(
            "invalid",
            "dcc.signature.invalid",
            "the signature is not in dcc:comment nor under the root: it cannot sign the document",
            checked_at,
        )
    is_xades = signature.find(f".//{{{XADES_NS}}}QualifyingProperties") is not None
    chain_pem = [
        (element.text or "").strip()
        for element in signature.iterfind(
            f"{{{DS_NS}}}KeyInfo/{{{DS_NS}}}X509Data/{{{DS_NS}}}X509Certificate"
        )
    ]
    try:
        chain = [x509.load_der_x509_certificate(base64.b64decode(pem)) for pem in chain_pem if pem]
    except (ValueError, binascii.Error) as exc:
        return _verdict(
            "invalid",
            "dcc.signature.invalid",
            f"a certificate in the signature cannot be read: {exc}",
            checked_at,
        )
    if not chain:
        return _verdict(
            "invalid",
            "dcc.signature.invalid",
            "the signature carries no X.509 certificate (ds:X509Certificate)",
            checked_at,
        )
    leaf = _leaf(chain)
    signer = SignerInfo.of(leaf)
    base: dict[str, Any] = {"signer": signer, "xades": is_xades}
    if not _covers_document(signature):
        return _verdict(
            "invalid",
            "dcc.signature.invalid",
            'the signature does not cover the whole document (no enveloped reference URI="")',
            checked_at,
            **base,
        )
    config_class = XAdESSignatureConfiguration if is_xades else SignatureConfiguration
    config = config_class(
        location=location,
        expect_references=True if is_xades else 1,
        # the certificate's time is judged below, against the anchors; here only the maths
        verification_time=leaf.not_valid_before_utc,
    )
    verifier = XAdESVerifier() if is_xades else XMLVerifier()
    try:
        results = verifier.verify(
            etree.tostring(root),
            x509_cert=leaf,
            expect_config=config,
            parser=etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False),
        )
    except (SignXMLException, ValueError, etree.XMLSyntaxError) as exc:
        return _verdict(
            "invalid",
            "dcc.signature.invalid",
            f"the document or its signature was changed after signing ({exc})",
            checked_at,
            **base,
        )
    signed = results if isinstance(results, list) else [results]
    if not any(r.signed_xml is not None and r.signed_xml.tag == ROOT_TAG for r in signed):
        return _verdict(
            "invalid",
            "dcc.signature.invalid",
            "the signed content is not this DCC",
            checked_at,
            **base,
        )
    signing_time = _signing_time(signature) if is_xades else None
    base["signing_time"] = signing_time
    problem = _trust(leaf, [c for c in chain if c is not leaf], trusted, checked_at)
    if problem is None:
        return _verdict(
            "valid",
            "dcc.signature.valid",
            f"signed by {signer.subject}, certificate {signer.serial_number}, "
            "chains to a trust anchor",
            checked_at,
            **base,
        )
    if not leaf.not_valid_before_utc <= checked_at <= leaf.not_valid_after_utc:
        then = ""
        if signing_time is not None:
            valid_then = (
                _trust(leaf, [c for c in chain if c is not leaf], trusted, signing_time) is None
            )
            then = (
                f"; at its claimed signing time {signing_time.isoformat()} the chain "
                + ("was valid" if valid_then else "was not valid either")
                + " (a claim no time-stamp proves)"
            )
        return _verdict(
            "untrusted",
            "dcc.signature.expired",
            f"the signer's certificate {signer.subject} is valid from "
            f"{signer.not_before.isoformat()} to {signer.not_after.isoformat()}{then}",
            checked_at,
            certificate_expired=True,
            **base,
        )
    return _verdict(
        "untrusted",
        "dcc.signature.untrusted",
        f"the signer's certificate {signer.subject} (issued by {signer.issuer}) does not chain "
        f"to a configured trust anchor: {problem}",
        checked_at,
        **base,
    )
