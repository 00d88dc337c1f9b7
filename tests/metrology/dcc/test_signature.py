"""Signing DCCs with a laboratory's X.509 key and judging signatures against trust anchors.
The PKI is made by the tests (conftest, pki.py); no private key is ever written to disk."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from lxml import etree

from metrology import dcc
from tests.metrology.dcc import samples
from tests.metrology.dcc.conftest import DATA
from tests.metrology.dcc.regenerate import SIGNED_AT
from tests.support import pki

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"


@pytest.fixture(scope="module")
def document() -> bytes:
    return dcc.build(samples.zener())


@pytest.fixture(scope="module")
def signed(document: bytes, lab_signer: pki.Identity, intermediate_ca: pki.Identity) -> bytes:
    return dcc.sign(
        document,
        key=lab_signer.key,
        certificates=[lab_signer.certificate, intermediate_ca.certificate],
        signing_time=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
    )


def test_a_signed_dcc_verifies_against_its_root(
    signed: bytes, root_ca: pki.Identity, lab_signer: pki.Identity
) -> None:
    verdict = dcc.verify(signed, anchors=[root_ca.certificate])
    assert verdict.status == "valid", verdict.reason
    assert verdict.code == "dcc.signature.valid"
    assert verdict.xades is True
    signer = verdict.signer
    assert signer is not None
    assert signer.subject == lab_signer.certificate.subject.rfc4514_string()
    assert "CN=VMI DCC signing" in signer.subject
    assert signer.serial_number == format(lab_signer.certificate.serial_number, "X")
    der = lab_signer.certificate.public_bytes(serialization.Encoding.DER)
    assert signer.sha256_fingerprint == hashlib.sha256(der).hexdigest()
    assert verdict.signing_time is not None
    assert abs(verdict.signing_time - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert abs(verdict.checked_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert verdict.message("vi").startswith("chữ ký hợp lệ: do CN=VMI DCC signing")


def test_the_signature_sits_in_dcc_comment_and_the_document_stays_valid(signed: bytes) -> None:
    dcc.validate(signed)
    root = etree.fromstring(signed)
    signatures = root.findall(f".//{{{DS}}}Signature")
    assert len(signatures) == 1
    parent = signatures[0].getparent()
    assert parent is not None and parent.tag == "{https://ptb.de/dcc}comment"
    assert parent.getparent() is root
    assert signatures[0].find(f".//{{{XADES}}}SigningTime") is not None
    assert signatures[0].find(f".//{{{XADES}}}SigningCertificateV2") is not None
    assert (
        len(signatures[0].findall(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate")) == 2
    )
    # and the certificate reads as it was
    assert dcc.parse(signed) == samples.zener()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"9.99999921", b"9.99999931"),  # a certified value
        (b"0.00000011", b"0.00000012"),  # an uncertainty
        (b"Z-98765", b"Z-98766"),  # the serial number
        (b"2026-03-05", b"2026-03-06"),  # a date
        (b'lang="vi"', b'lang="vj"'),  # an attribute
        (b"</dcc:eMail>", b" </dcc:eMail>"),  # one blank
    ],
)
def test_a_one_byte_edit_makes_the_signature_invalid(
    signed: bytes, root_ca: pki.Identity, old: bytes, new: bytes
) -> None:
    edited = signed.replace(old, new, 1)
    assert edited != signed
    verdict = dcc.verify(edited, anchors=[root_ca.certificate])
    assert verdict.status == "invalid"
    assert "changed after signing" in verdict.reason
    assert verdict.signer is not None  # still says whose signature it claims to be


def test_editing_the_signature_itself_is_invalid(signed: bytes, root_ca: pki.Identity) -> None:
    root = etree.fromstring(signed)
    value = root.find(f".//{{{DS}}}SignatureValue")
    assert value is not None and value.text
    flipped = ("A" if value.text[10] != "A" else "B").encode()
    position = signed.index(value.text.encode()) + 10
    edited = signed[:position] + flipped + signed[position + 1 :]
    assert dcc.verify(edited, anchors=[root_ca.certificate]).status == "invalid"
    claimed = signed.replace(b"<xades:SigningTime>", b"<xades:SigningTime>1", 1)
    assert claimed != signed
    assert dcc.verify(claimed, anchors=[root_ca.certificate]).status == "invalid"


def test_a_signature_that_does_not_cover_the_whole_document_is_invalid(
    signed: bytes, root_ca: pki.Identity
) -> None:
    edited = signed.replace(b'URI=""', b'URI="#elsewhere"', 1)
    verdict = dcc.verify(edited, anchors=[root_ca.certificate])
    assert verdict.status == "invalid"
    assert "does not cover the whole document" in verdict.reason


def test_two_signatures_are_invalid(signed: bytes, root_ca: pki.Identity) -> None:
    root = etree.fromstring(signed)
    signature = root.find(f".//{{{DS}}}Signature")
    assert signature is not None
    root.find("{https://ptb.de/dcc}comment").append(etree.fromstring(etree.tostring(signature)))  # type: ignore[union-attr]
    verdict = dcc.verify(etree.tostring(root), anchors=[root_ca.certificate])
    assert verdict.status == "invalid"
    assert "2 signatures" in verdict.reason


def test_a_signature_moved_elsewhere_is_invalid(signed: bytes, root_ca: pki.Identity) -> None:
    root = etree.fromstring(signed)
    signature = root.find(f".//{{{DS}}}Signature")
    assert signature is not None
    signature.getparent().remove(signature)  # type: ignore[union-attr]
    root.find(".//{https://ptb.de/dcc}item").append(signature)  # type: ignore[union-attr]
    verdict = dcc.verify(etree.tostring(root), anchors=[root_ca.certificate])
    assert verdict.status == "invalid"
    assert "not in dcc:comment" in verdict.reason


def test_a_certificate_not_chaining_to_an_anchor_is_untrusted(signed: bytes) -> None:
    stranger = pki.certificate_authority("some other root")
    verdict = dcc.verify(signed, anchors=[stranger.certificate])
    assert verdict.status == "untrusted"
    assert verdict.code == "dcc.signature.untrusted"
    assert "does not chain to a configured trust anchor" in verdict.reason
    assert "etalon test intermediate CA" in verdict.reason
    assert verdict.message("vi").startswith("chữ ký nguyên vẹn nhưng không được tin cậy")


def test_without_anchors_nothing_is_trusted(signed: bytes) -> None:
    verdict = dcc.verify(signed, anchors=[])
    assert verdict.status == "untrusted"
    assert "no trust anchors are configured" in verdict.reason


def test_a_self_signed_lab_is_trusted_when_its_certificate_is_the_anchor(document: bytes) -> None:
    own = pki.certificate_authority("VMI self-signed")
    alone = pki.signer(own)
    signed = dcc.sign(document, key=alone.key, certificates=[alone.certificate])
    assert dcc.verify(signed, anchors=[alone.certificate]).status == "valid"
    assert dcc.verify(signed, anchors=[own.certificate]).status == "valid"
    assert (
        dcc.verify(signed, anchors=[pki.certificate_authority().certificate]).status == "untrusted"
    )


def test_an_expired_signer_certificate_is_stated(document: bytes, root_ca: pki.Identity) -> None:
    now = dt.datetime.now(dt.UTC)
    short = pki.signer(
        root_ca, not_before=now - dt.timedelta(days=10), not_after=now + dt.timedelta(days=1)
    )
    signed = dcc.sign(document, key=short.key, certificates=[short.certificate], signing_time=now)
    later = now + dt.timedelta(days=30)
    verdict = dcc.verify(signed, anchors=[root_ca.certificate], at=later)
    assert verdict.status == "untrusted"
    assert verdict.code == "dcc.signature.expired"
    assert verdict.certificate_expired is True
    assert verdict.checked_at == later
    assert "at its claimed signing time" in verdict.reason
    assert "the chain was valid" in verdict.reason
    assert "no time-stamp proves" in verdict.reason
    assert "không còn hiệu lực" in verdict.message("vi")
    # the same document checked while the certificate was in force
    assert dcc.verify(signed, anchors=[root_ca.certificate], at=now).status == "valid"


def test_signing_with_an_expired_certificate_is_refused(
    document: bytes, root_ca: pki.Identity
) -> None:
    now = dt.datetime.now(dt.UTC)
    old = pki.signer(
        root_ca, not_before=now - dt.timedelta(days=400), not_after=now - dt.timedelta(days=30)
    )
    with pytest.raises(dcc.SignatureError, match="is not valid on"):
        dcc.sign(document, key=old.key, certificates=[old.certificate])


def test_plain_xmldsig_without_xades(
    document: bytes, lab_signer: pki.Identity, intermediate_ca: pki.Identity, root_ca: pki.Identity
) -> None:
    signed = dcc.sign(
        document,
        key=lab_signer.key,
        certificates=[lab_signer.certificate, intermediate_ca.certificate],
        xades=False,
    )
    dcc.validate(signed)
    assert b"QualifyingProperties" not in signed
    verdict = dcc.verify(signed, anchors=[root_ca.certificate])
    assert (verdict.status, verdict.xades, verdict.signing_time) == ("valid", False, None)
    assert (
        dcc.verify(
            signed.replace(b"1.01800452", b"1.01800453"), anchors=[root_ca.certificate]
        ).status
        == "invalid"
    )


def test_an_rsa_key_signs_too(document: bytes, root_ca: pki.Identity) -> None:
    identity = pki.signer(
        root_ca, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    pem_key = identity.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    pem_cert = identity.certificate.public_bytes(serialization.Encoding.PEM)
    signed = dcc.sign(document, key=pem_key, password=b"secret", certificates=[pem_cert])
    assert b"rsa-sha256" in signed
    root_pem = root_ca.certificate.public_bytes(serialization.Encoding.PEM)
    assert dcc.verify(signed, anchors=[root_pem]).status == "valid"


def test_unsigned(document: bytes, root_ca: pki.Identity) -> None:
    verdict = dcc.verify(document, anchors=[root_ca.certificate])
    assert (verdict.status, verdict.signer, verdict.code) == (
        "unsigned",
        None,
        "dcc.signature.unsigned",
    )


def test_the_committed_signed_dcc_verifies_at_a_fixed_time() -> None:
    """A document signed once by a key thrown away since (regenerate.py): verified from its
    bytes and the CA certificate alone."""
    signed = (DATA / "zener-signed.xml").read_bytes()
    anchors = dcc.load_certificates((DATA / "signed-by-ca.pem").read_bytes())
    at = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    verdict = dcc.verify(signed, anchors=anchors, at=at)
    assert verdict.status == "valid", verdict.reason
    assert verdict.signing_time == SIGNED_AT
    position = signed.index(b"1.01800452") + 3
    edited = signed[:position] + b"9" + signed[position + 1 :]
    assert dcc.verify(edited, anchors=anchors, at=at).status == "invalid"
    assert dcc.verify(
        signed, anchors=anchors, at=dt.datetime(2050, 1, 1, tzinfo=dt.UTC)
    ).certificate_expired


def test_refusals_when_signing(
    document: bytes, signed: bytes, lab_signer: pki.Identity, root_ca: pki.Identity
) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(dcc.SignatureError, match="the key does not belong to the certificate"):
        dcc.sign(document, key=other, certificates=[lab_signer.certificate])
    with pytest.raises(dcc.SignatureError, match="already signed"):
        dcc.sign(signed, key=lab_signer.key, certificates=[lab_signer.certificate])
    with pytest.raises(dcc.SignatureError, match="Ed25519PrivateKey cannot make an XML signature"):
        dcc.sign(
            document,
            key=ed25519.Ed25519PrivateKey.generate(),
            certificates=[lab_signer.certificate],
        )
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(dcc.SignatureError, match="1024 bits is too short"):
        dcc.sign(document, key=weak, certificates=[pki.signer(root_ca, key=weak).certificate])
    with pytest.raises(dcc.SignatureError, match="the signer's certificate is needed"):
        dcc.sign(document, key=lab_signer.key, certificates=[])
    with pytest.raises(dcc.SignatureError, match="cannot read the private key"):
        dcc.sign(
            document,
            key=b"-----BEGIN PRIVATE KEY-----\nnope\n",
            certificates=[lab_signer.certificate],
        )
    with pytest.raises(dcc.SignatureError, match="not a PEM certificate file"):
        dcc.load_certificates(b"not a certificate")
    with pytest.raises(dcc.DccInvalid, match="not a DCC"):
        dcc.sign(b"<r/>", key=lab_signer.key, certificates=[lab_signer.certificate])


def test_a_document_written_elsewhere_signs_and_verifies(
    lab_signer: pki.Identity, intermediate_ca: pki.Identity, root_ca: pki.Identity
) -> None:
    original = (DATA / "thermometer-handwritten.xml").read_bytes()  # tabs, an XML comment
    signed = dcc.sign(
        original,
        key=lab_signer.key,
        certificates=[lab_signer.certificate, intermediate_ca.certificate],
    )
    dcc.validate(signed)
    assert dcc.verify(signed, anchors=[root_ca.certificate]).status == "valid"
    assert dcc.parse(signed).points() == dcc.parse(original).points()
    # the signature covers the canonical document (what it says), not its bytes: an XML
    # comment is not signed content, a changed value is
    commented = signed.replace(b"Not a real certificate.", b"Not a real certificate!", 1)
    assert commented != signed
    assert dcc.verify(commented, anchors=[root_ca.certificate]).status == "valid"
    edited = signed.replace(b"0.020 -0.028", b"0.021 -0.028", 1)
    assert dcc.verify(edited, anchors=[root_ca.certificate]).status == "invalid"
