"""Verification of the XML signature (XML-DSig, enveloped) of a CAP alert.

``verify_signature(data)`` takes the raw bytes of one CAP alert and says
whether it carries a signature (``ABSENT`` if not) and whether that signature
is cryptographically valid for the alert and the key in its ``KeyInfo``
(``VALID`` / ``INVALID``). With a trust store, a valid signature must also come
from a certificate that is, or is issued by, one of the store's certificates.
Nothing is fetched: no DTD, no entity, no external reference, no CRL or OCSP.

The cryptography is signxml's, with these CAP-specific rules around it:

* The signature must be a direct child of the root and must cover the whole
  alert: one ``Reference`` with ``URI=""`` (or no URI, or ``#id`` of the root
  element), enveloped-signature and canonicalization transforms only.
* SHA-1 (``rsa-sha1``, ``sha1`` digests) is accepted, because real signed CAP
  uses it, and the result message calls it weak.
* An expired (or not yet valid) certificate does not make a signature
  invalid; the message says so. A trust store is checked the same way: chain
  signatures, CA flags and key usage, not dates.
* Real-world conventions that strict XML-DSig rejects, each tried only after
  the strict check failed and always named in the result message:

  - *several signatures*: NAADS (Canada) adds its own signature next to the
    originator's and both digests are computed with no signature present;
    Google's cap-library checks each signature with the others removed, and
    so do we;
  - *re-indented documents*: WMO signed alerts (wis2box, capvalidator) are
    signed without indentation and published pretty-printed; capvalidator
    verifies after dropping whitespace-only text between elements, and so do
    we. CAP has no mixed content, so that whitespace carries no meaning; text
    inside an element (even blank) is never touched.

* Several top-level signatures must all verify; with a trust store, one of
  them must come from a trusted certificate.

libxml2 2.14 (bundled with lxml 6) emits spurious ``xmlns=""`` when it
canonicalizes (inclusive C14N) an element below the root of its document
whose default namespace is declared on an ancestor; signxml canonicalizes
``SignedInfo`` in place, so every signature using an unprefixed ds namespace
and inclusive C14N failed. ``_Verifier`` canonicalizes a standalone copy
instead, which is what the specification asks for anyway.

Known limit: for ``URI=""`` signxml digests the root element, not the
document node, so a signer that included processing instructions outside the
root (``<?xml-stylesheet?>``) in its digest is reported invalid.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature as CryptographyInvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidDigest, InvalidInput, InvalidSignature
from signxml.verifier import SignatureConfiguration, VerifyResult, XMLVerifier

from cap.errors import CapError

logger = logging.getLogger(__name__)

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
DSIG11_NS = "http://www.w3.org/2009/xmldsig11#"
CAP_NS_PREFIX = "urn:oasis:names:tc:emergency:cap:"
TRUST_STORE_SUFFIXES = (".pem", ".crt", ".cer")

_SIGNATURE = f"{{{DS_NS}}}Signature"
_NS = {"ds": DS_NS, "dsig11": DSIG11_NS}
_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_ALLOWED_TRANSFORMS = frozenset({_ENVELOPED} | {m.value for m in CanonicalizationMethod})
_ID_ATTRIBUTES = ("Id", "ID", "id", "{http://www.w3.org/XML/1998/namespace}id")
_MAX_CHAIN = 8
# Each signature, and each key tried for it, costs a parse of the document:
# bound the work a hostile document can ask for.
_MAX_SIGNATURES = 4
_MAX_CERTIFICATES = 8
_MAX_STORE_CANDIDATES = 16
_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s.*?-----END CERTIFICATE-----", re.DOTALL)
# A badly formed Id attribute on ds:Signature (NAADS writes Id="NAADS Signature")
# breaks nothing that is signed; every other schema error refuses the signature.
_IGNORABLE_SCHEMA_ERROR = re.compile(
    r"attribute 'Id': .* is not a valid value of the atomic type 'xs:ID'")
_LONG_QUOTED = re.compile(r"'([A-Za-z0-9+/=\s]{24})[A-Za-z0-9+/=\s]{16,}'")

_CONFIG = SignatureConfiguration(
    require_x509=True,
    location="./",
    expect_references=1,
    signature_methods=frozenset(m for m in SignatureMethod if not m.name.startswith("HMAC_")),
    digest_algorithms=frozenset(DigestAlgorithm),
)


class SignatureStatus(Enum):
    """What ``verify_signature`` found."""

    #: The alert is signed and the signature verifies (and is trusted, when a
    #: trust store was given).
    VALID = "valid"
    #: The alert carries a signature that does not verify, cannot be checked,
    #: or comes from a certificate the trust store does not trust.
    INVALID = "invalid"
    #: The alert carries no signature.
    ABSENT = "absent"


@dataclass(frozen=True, slots=True, kw_only=True)
class SignatureResult:
    """The outcome of checking an alert's signature.

    ``message`` is for people: why the signature is invalid, or which
    algorithm and whose certificate (its subject CN) made it, with any
    caveat (weak algorithm, expired certificate, convention used), or
    ``"not signed"``. ``signer`` is the signing certificate's subject
    (RFC 4514) when a certificate is known. ``trusted`` is ``None`` when no
    trust store was given (or there is no key to judge), else whether the
    signing certificate is, or chains to, a trust-store certificate.
    """

    status: SignatureStatus
    message: str
    signer: str | None = None
    trusted: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustStore:
    """Certificates whose signatures capcast trusts, and where they came from.

    A certificate in the store is trusted itself (pinned) and, when it is a
    CA (or carries no BasicConstraints), so is everything it issues, possibly
    through intermediate CA certificates embedded in the signature.
    """

    certificates: tuple[x509.Certificate, ...]
    source: str

    def __post_init__(self) -> None:
        if not self.certificates:
            raise ValueError("a trust store needs at least one certificate")
        for cert in self.certificates:
            if not isinstance(cert, x509.Certificate):
                raise TypeError(f"not an X.509 certificate: {cert!r}")


def load_trust_store(path: str | os.PathLike[str]) -> TrustStore:
    """Load the certificates of a trust store.

    ``path`` is a PEM file (one or more certificates; other PEM blocks such as
    keys are skipped) or a folder whose ``*.pem``, ``*.crt`` and ``*.cer``
    files each hold PEM or DER certificates (not searched recursively).

    Raises ``CapError``, naming the path, when the path cannot be read, a
    file holds a malformed certificate, or no certificate is found at all.
    """
    where = Path(path)
    try:
        if where.is_dir():
            files = sorted(p for p in where.iterdir()
                           if p.suffix.lower() in TRUST_STORE_SUFFIXES and p.is_file())
            if not files:
                raise CapError(f"trust store {where}: the folder holds no "
                               f"{', '.join('*' + s for s in TRUST_STORE_SUFFIXES)} file")
        elif where.exists():
            files = [where]
        else:
            raise CapError(f"trust store {where}: no such file or folder")
        certificates: list[x509.Certificate] = []
        for file in files:
            certificates.extend(_read_certificates(file))
    except OSError as exc:
        raise CapError(f"trust store {where}: cannot be read ({exc.strerror or exc})") from exc
    if not certificates:
        raise CapError(f"trust store {where}: contains no X.509 certificate")
    return TrustStore(certificates=tuple(certificates), source=str(where))


def verify_signature(data: bytes, *, trust_store: TrustStore | None = None) -> SignatureResult:
    """Verify the enveloped XML signature of one CAP alert.

    ``data`` is the alert's raw bytes (for an alert embedded in a feed or an
    EDXL-DE envelope, pass the alert's own bytes). Returns ``ABSENT`` when no
    signature is found, ``VALID`` when every top-level signature verifies
    against the key in its ``KeyInfo`` (and, with ``trust_store``, one of
    them comes from a trusted certificate), else ``INVALID``. Never raises
    for bad input; raises ``TypeError`` when ``data`` is not bytes.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"verify_signature() needs bytes, not {type(data).__name__}")
    data = bytes(data)
    try:
        # cryptography warns about certificates with a non-positive serial
        # number (real CAP signers use them); that is no reason to fail here.
        # (catch_warnings is process-wide: a concurrent thread may miss a warning.)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            result = _verify(data, trust_store)
    except Exception as exc:  # a bug or an input we did not foresee: fail closed
        logger.exception("signature check failed unexpectedly",
                         extra={"action": "verify_signature"})
        result = SignatureResult(
            status=SignatureStatus.INVALID,
            message=f"invalid: the signature could not be checked ({type(exc).__name__}: {exc})")
    logger.debug("signature checked", extra={
        "action": "verify_signature", "status": result.status.value,
        "signer": result.signer, "trusted": result.trusted})
    return result


# --- the check itself ------------------------------------------------------------------------


class _Refused(Exception):
    """A signature we will not or cannot check; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Key:
    """What to verify with: a certificate, or ``None`` for the bare KeyValue."""

    certificate: x509.Certificate | None
    from_trust_store: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class _Inspected:
    """What a Signature element says about itself, checked for sanity."""

    signature_method: SignatureMethod
    digest_method: DigestAlgorithm
    certificates: tuple[x509.Certificate, ...]
    keys: tuple[_Key, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Outcome:
    """The verdict on one top-level signature."""

    ok: bool
    label: str
    reason: str = ""
    certificate: x509.Certificate | None = None
    algorithm: str = ""
    notes: tuple[str, ...] = ()
    validity: str = ""
    trusted: bool | None = None
    trust_note: str = ""


@dataclass(frozen=True, slots=True)
class _Variant:
    """One way of presenting the document to signxml."""

    strip_indentation: bool
    isolate: bool


def _verify(data: bytes, trust_store: TrustStore | None) -> SignatureResult:
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        return SignatureResult(status=SignatureStatus.INVALID, message=(
            "invalid: the document is not well-formed XML, so no signature can be checked "
            f"({exc})"))
    if root.tag == _SIGNATURE:
        return SignatureResult(status=SignatureStatus.INVALID, message=(
            "invalid: the document is a bare XML signature, not a signed alert"))

    signatures = root.findall(_SIGNATURE)
    if not signatures:
        nested = list(root.iter(_SIGNATURE))
        if not nested:
            return SignatureResult(status=SignatureStatus.ABSENT, message="not signed")
        paths = ", ".join(_path(el) for el in nested[:3]) + (", ..." if len(nested) > 3 else "")
        if etree.QName(root).namespace and etree.QName(root).namespace.startswith(CAP_NS_PREFIX):
            return SignatureResult(status=SignatureStatus.INVALID, message=(
                f"invalid: the Signature element at {paths} is not a direct child of <alert>, "
                "so it does not sign the alert"))
        return SignatureResult(status=SignatureStatus.ABSENT, message=(
            f"not signed: the document itself carries no signature; {len(nested)} signature(s) "
            f"inside it ({paths}) belong to embedded documents, to be checked with their own "
            "bytes"))

    if len(signatures) > _MAX_SIGNATURES:
        return SignatureResult(status=SignatureStatus.INVALID, message=(
            f"invalid: {len(signatures)} signatures on one alert; capcast checks at most "
            f"{_MAX_SIGNATURES}"))
    outcomes = [_check_one(data, root, index, len(signatures), trust_store)
                for index in range(len(signatures))]
    return _combine(outcomes, trust_store)


def _check_one(data: bytes, root: Any, index: int, count: int,
               trust_store: TrustStore | None) -> _Outcome:
    signature = root.findall(_SIGNATURE)[index]
    label = _label(signature, index, count)
    try:
        inspected = _inspect(signature, root, trust_store)
    except _Refused as exc:
        return _Outcome(ok=False, label=label, reason=str(exc))

    variants = [_Variant(False, False)]
    if count > 1:
        variants.append(_Variant(False, True))
    variants.append(_Variant(True, False))
    if count > 1:
        variants.append(_Variant(True, True))

    best: tuple[int, Exception] | None = None
    for variant in variants:
        tree = root if variant == _Variant(False, False) else _prepare(data, index, variant)
        target = 0 if variant.isolate else index
        for key in inspected.keys:
            try:
                public_key = _run_signxml(tree, target, key)
            except Exception as exc:  # signxml, cryptography and lxml raise many kinds
                rank = _rank(exc)
                if best is None or rank > best[0]:
                    best = (rank, exc)
                continue
            return _success(label, inspected, key, public_key, variant, trust_store)
    assert best is not None
    leaf = _leaf_first(inspected.certificates)[0] if inspected.certificates else None
    return _Outcome(ok=False, label=label, reason=_explain(best[1]), certificate=leaf)


def _inspect(signature: Any, root: Any, trust_store: TrustStore | None) -> _Inspected:
    problem, ignored = _schema_problem(signature)
    if problem is not None:
        raise _Refused(f"the Signature element is malformed: {problem}")
    notes = tuple(f"ignored a <{name}> element outside the XML-DSig namespace inside the "
                  "Signature" for name in ignored)
    signed_info = signature.find("ds:SignedInfo", _NS)

    method_uri = signed_info.find("ds:SignatureMethod", _NS).get("Algorithm")
    try:
        signature_method = SignatureMethod(method_uri)
    except ValueError:
        raise _Refused(f"unsupported signature algorithm {method_uri}") from None
    if signature_method.name.startswith("HMAC_"):
        raise _Refused("an HMAC (shared-secret) signature cannot be checked without the secret")
    c14n_uri = signed_info.find("ds:CanonicalizationMethod", _NS).get("Algorithm")
    try:
        CanonicalizationMethod(c14n_uri)
    except ValueError:
        raise _Refused(f"unsupported canonicalization {c14n_uri}") from None

    references = signed_info.findall("ds:Reference", _NS)
    if len(references) != 1:
        raise _Refused(f"the signature has {len(references)} references; a CAP signature has "
                       "exactly one, covering the whole alert")
    reference = references[0]
    uri = reference.get("URI")
    if uri is not None and uri != "":
        if not uri.startswith("#"):
            raise _Refused(f"the signature references {uri!r}; capcast never fetches anything")
        if uri[1:] not in {root.get(name) for name in _ID_ATTRIBUTES}:
            raise _Refused(f"the signature covers only part of the document (Reference URI "
                           f"{uri!r}), not the whole alert")
    for transform in reference.iterfind("ds:Transforms/ds:Transform", _NS):
        algorithm = transform.get("Algorithm")
        if algorithm not in _ALLOWED_TRANSFORMS:
            raise _Refused(f"unsupported transform {algorithm}")
    digest_uri = reference.find("ds:DigestMethod", _NS).get("Algorithm")
    try:
        digest_method = DigestAlgorithm(digest_uri)
    except ValueError:
        raise _Refused(f"unsupported digest algorithm {digest_uri}") from None

    embedded = signature.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", _NS)
    if len(embedded) > _MAX_CERTIFICATES:
        raise _Refused(f"KeyInfo embeds {len(embedded)} certificates; capcast reads at most "
                       f"{_MAX_CERTIFICATES}")
    certificates = tuple(_load_certificate(element) for element in embedded)
    for cert in certificates:
        if cert.issuer == cert.subject and not _self_signature_ok(cert):
            raise _Refused(f"the embedded certificate ({_common_name(cert)}) is corrupted: "
                           "its self-signature does not verify")
    keys: tuple[_Key, ...]
    has_x509_data = signature.find("ds:KeyInfo/ds:X509Data", _NS) is not None
    has_key_value = (signature.find("ds:KeyInfo/ds:KeyValue", _NS) is not None
                     or signature.find("ds:KeyInfo/dsig11:DEREncodedKeyValue", _NS) is not None)
    if certificates:
        keys = tuple(_Key(certificate=cert) for cert in _leaf_first(certificates))
    elif has_key_value and not has_x509_data:
        keys = (_Key(certificate=None),)
    elif trust_store is not None:
        keys = tuple(_Key(certificate=cert, from_trust_store=True)
                     for cert in _store_candidates(signature, signature_method, trust_store))
        if not keys:
            raise _Refused("KeyInfo embeds no certificate and no trust-store certificate has "
                           f"a {signature_method.name.split('_')[0]} key to check it with")
    elif has_x509_data:
        raise _Refused("KeyInfo names a certificate without embedding it; only a trust store "
                       "holding that certificate could check this signature")
    else:
        raise _Refused("the signature carries no key (no certificate, no KeyValue in KeyInfo)")
    return _Inspected(signature_method=signature_method, digest_method=digest_method,
                      certificates=certificates, keys=keys, notes=notes)


def _schema_problem(signature: Any) -> tuple[str | None, list[str]]:
    """Check the Signature against the XML-DSig schema.

    Returns the first real error (or ``None``) and the names of the children
    outside the XML-DSig namespace that were left out of the check: they are
    neither signed nor used (NAADS writes ``<Object xmlns="">``).
    """
    copy = etree.fromstring(etree.tostring(signature, with_tail=False), _parser())
    ignored = []
    for child in list(copy):
        if isinstance(child.tag, str) and etree.QName(child).namespace not in (DS_NS, DSIG11_NS):
            ignored.append(etree.QName(child).localname)
            copy.remove(child)
    for schema in XMLVerifier.schemas():  # type: ignore[no-untyped-call]
        if schema.validate(copy):
            return None, ignored
        errors = [e for e in schema.error_log if not _IGNORABLE_SCHEMA_ERROR.search(e.message)]
        if not errors:
            return None, ignored
        message = errors[0].message.replace(f"{{{DS_NS}}}", "ds:").replace(f"{{{DSIG11_NS}}}",
                                                                            "dsig11:")
        return _LONG_QUOTED.sub(r"'\1...'", message), ignored
    return None, ignored


def _load_certificate(element: Any) -> x509.Certificate:
    text = "".join((element.text or "").split())
    try:
        return x509.load_der_x509_certificate(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise _Refused(f"the embedded X.509 certificate cannot be read ({exc})") from None


def _prepare(data: bytes, index: int, variant: _Variant) -> Any:
    """A fresh tree of ``data`` for one of the lenient variants."""
    root = etree.fromstring(data, _parser())
    if variant.isolate:
        for position, other in enumerate(root.findall(_SIGNATURE)):
            if position != index:
                _remove_keeping_tail(other)
    if variant.strip_indentation:
        _strip_indentation(root)
    return root


def _strip_indentation(root: Any) -> None:
    """Drop whitespace-only text between elements, where an element has no other text."""
    for element in root.iter(tag=etree.Element):
        children = list(element)
        if not children:
            continue
        texts = [element.text] + [child.tail for child in children]
        if all(t is None or not t.strip() for t in texts):
            element.text = None
            for child in children:
                child.tail = None


def _remove_keeping_tail(element: Any) -> None:
    parent = element.getparent()
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def _run_signxml(root: Any, index: int, key: _Key) -> PublicKeyTypes:
    """Verify with signxml; return the public key that verified the signature."""
    config = _CONFIG
    cert = key.certificate
    if cert is None:
        config = replace(config, require_x509=False)
    else:
        # Check the signature at a moment the certificate was valid: expiry is
        # reported in the message, not held against the signature.
        now = datetime.now(UTC)
        when = min(max(now, cert.not_valid_before_utc), cert.not_valid_after_utc)
        config = replace(config, verification_time=when)
    result = _Verifier(index).verify(root, x509_cert=cert, parser=_parser(),
                                     expect_config=config, validate_schema=False)
    assert isinstance(result, VerifyResult)  # expect_references=1
    return serialization.load_pem_public_key(result.signature_key)


class _Verifier(XMLVerifier):
    """signxml's verifier, pinned to one top-level signature, with a C14N fix."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self._index = index

    def _get_signature(self, root: Any) -> Any:
        signatures = root.findall(_SIGNATURE)
        if self._index >= len(signatures):
            raise InvalidInput("the Signature element is missing")
        return signatures[self._index]

    def _resolve_reference(self, doc_root: Any, reference: Any, uri_resolver: Any = None) -> Any:
        # An enveloped signature whose Reference has no URI signs its document.
        if reference.get("URI") is None:
            return doc_root
        return super()._resolve_reference(  # type: ignore[no-untyped-call]
            doc_root, reference, uri_resolver=uri_resolver)

    def _c14n(self, nodes: Any, algorithm: CanonicalizationMethod,
              inclusive_ns_prefixes: Any = None) -> bytes:
        if not algorithm.value.startswith("http://www.w3.org/2001/10/xml-exc-c14n#"):
            # See the module docstring: canonicalize a standalone copy, which
            # carries every in-scope namespace of the original.
            items = nodes if isinstance(nodes, list) else [nodes]
            nodes = [self._standalone(node) for node in items]
        result: bytes = super()._c14n(nodes, algorithm, inclusive_ns_prefixes)
        return result

    def _standalone(self, node: Any) -> Any:
        if not isinstance(node, etree._Element) or node.getparent() is None:
            return node
        data = etree.tostring(node, with_tail=False)
        return self._fromstring(data)  # type: ignore[no-untyped-call]


def _rank(exc: Exception) -> int:
    """How far verification got before ``exc``: prefer reporting the deepest failure."""
    if isinstance(exc, InvalidDigest):
        return 2
    if isinstance(exc, (InvalidSignature, CryptographyInvalidSignature)):
        return 1
    return 0


def _explain(exc: Exception) -> str:
    if isinstance(exc, InvalidDigest):
        return "the alert was modified after signing (digest mismatch)"
    if isinstance(exc, (InvalidSignature, CryptographyInvalidSignature)) and (
            not str(exc) or str(exc).startswith("Signature verification failed")):
        return ("the signature value does not match: the SignedInfo was altered or the "
                "signature was made with another key")
    detail = _LONG_QUOTED.sub(r"'\1...'", str(exc)) or type(exc).__name__
    return f"the signature cannot be verified ({detail})"


def _success(label: str, inspected: _Inspected, key: _Key, public_key: PublicKeyTypes,
             variant: _Variant, trust_store: TrustStore | None) -> _Outcome:
    cert = key.certificate
    notes = list(inspected.notes)
    if key.from_trust_store:
        notes.append("KeyInfo embeds no certificate; the trust store's was used")
    if variant.isolate:
        notes.append("verified with the other signature(s) removed, as NAADS signs and "
                     "Google's cap-library verifies")
    if variant.strip_indentation:
        notes.append("verified once indentation between elements is ignored (the alert was "
                     "re-indented after signing; WMO capvalidator accepts this)")
    validity = _validity_note(cert) if cert is not None else ""
    chain = tuple(c for c in inspected.certificates if c is not cert)
    trusted: bool | None = None
    trust_note = ""
    if trust_store is not None:
        if cert is not None:
            anchor = _trust_anchor(cert, chain, trust_store)
            trusted = anchor is not None
            if anchor is not None:
                trust_note = (
                    "the certificate is in the trust store" if _same(anchor, cert) else
                    f"the certificate chains to {_common_name(anchor)} in the trust store")
        else:
            owner = _key_owner(public_key, trust_store)
            trusted = owner is not None
            if owner is not None:
                cert = owner
                trust_note = f"the key is that of {_common_name(owner)} in the trust store"
    return _Outcome(ok=True, label=label, certificate=cert,
                    algorithm=_algorithm_text(inspected, public_key), notes=tuple(notes),
                    validity=validity, trusted=trusted, trust_note=trust_note)


def _validity_note(cert: x509.Certificate) -> str:
    """Say when the certificate is outside its validity period now."""
    now = datetime.now(UTC)
    if now > cert.not_valid_after_utc:
        return f"certificate expired on {cert.not_valid_after_utc.date().isoformat()}"
    if now < cert.not_valid_before_utc:
        return f"certificate not valid before {cert.not_valid_before_utc.date().isoformat()}"
    return ""


def _combine(outcomes: Sequence[_Outcome], trust_store: TrustStore | None) -> SignatureResult:
    failed = [o for o in outcomes if not o.ok]
    passed = [o for o in outcomes if o.ok]
    trusted_ones = [o for o in passed if o.trusted]
    trusted = None if trust_store is None else bool(trusted_ones)
    if failed:
        first = failed[0]
        cert = first.certificate or (passed[0].certificate if passed else None)
        prefix = f"{first.label}: " if first.label else ""
        if trust_store is not None and cert is not None:
            trusted = trusted or _trust_anchor(cert, (), trust_store) is not None
        elif not passed:
            trusted = None
        return SignatureResult(status=SignatureStatus.INVALID,
                               message=f"invalid: {prefix}{first.reason}",
                               signer=_subject(cert), trusted=trusted)
    if trust_store is not None and not trusted_ones:
        first = passed[0]
        if first.certificate is not None:
            who = _common_name(first.certificate)
            reason = (f"the certificate is not trusted: {who} is neither in the trust store "
                      f"({trust_store.source}) nor issued by one of its certificates")
        else:
            reason = ("the signing key is not trusted: it is a bare public key that matches no "
                      f"certificate in the trust store ({trust_store.source})")
        return SignatureResult(status=SignatureStatus.INVALID,
                               message=f"invalid: {reason} (the signature itself verifies)",
                               signer=_subject(first.certificate), trusted=False)
    parts = []
    for outcome in passed:
        if outcome.certificate is None:
            by = ", signed with a bare public key (no certificate, signer unknown)"
        else:
            by = f", signed by {_common_name(outcome.certificate)}"
            by += f" ({outcome.validity})" if outcome.validity else ""
        parts.append(f"valid ({outcome.algorithm}){by}")
    notes: list[str] = []
    for outcome in passed:
        for note in (*outcome.notes, outcome.trust_note):
            if note and note not in notes:
                notes.append(note)
    message = "; also ".join(parts) + "".join(f"; {note}" for note in notes)
    chosen = trusted_ones[0] if trusted_ones else passed[0]
    return SignatureResult(status=SignatureStatus.VALID, message=message,
                           signer=_subject(chosen.certificate), trusted=trusted)


# --- certificates and trust ---------------------------------------------------------------------


def _read_certificates(file: Path) -> list[x509.Certificate]:
    raw = file.read_bytes()
    try:
        if b"-----BEGIN" in raw:
            return [x509.load_pem_x509_certificate(block)
                    for block in _PEM_CERTIFICATE.findall(raw)]
        return [x509.load_der_x509_certificate(raw)] if raw.strip() else []
    except ValueError as exc:
        raise CapError(f"trust store {file}: not a readable certificate ({exc})") from exc


def _trust_anchor(cert: x509.Certificate, intermediates: Sequence[x509.Certificate],
                  store: TrustStore) -> x509.Certificate | None:
    """The trust-store certificate ``cert`` is, or chains to; ``None`` if untrusted."""
    current = cert
    used: list[x509.Certificate] = []
    for _ in range(_MAX_CHAIN):
        for anchor in store.certificates:
            if _same(anchor, current) or _issued_by(current, anchor, anchor=True):
                return anchor
        step = next((c for c in intermediates if not any(_same(c, u) for u in used)
                     and _issued_by(current, c, anchor=False)), None)
        if step is None:
            return None
        used.append(step)
        current = step
    return None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate, *, anchor: bool) -> bool:
    """Whether ``issuer`` signed ``cert`` and may issue certificates.

    Intermediates must say they are CAs; a trust anchor without BasicConstraints
    (an old v1 root) is accepted because the operator chose it.
    """
    if cert.issuer != issuer.subject or _same(cert, issuer):
        return False
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if (constraints is None and not anchor) or (constraints is not None and not constraints.ca):
        return False
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.key_cert_sign:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, CryptographyInvalidSignature):
        return False
    return True


def _self_signature_ok(cert: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, CryptographyInvalidSignature):
        return False
    return True


def _key_owner(public_key: PublicKeyTypes, store: TrustStore) -> x509.Certificate | None:
    """The trust-store certificate carrying ``public_key`` (a bare KeyValue), if any."""
    wanted = _spki(public_key)
    return next((c for c in store.certificates if _spki(c.public_key()) == wanted), None)


def _spki(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def _store_candidates(signature: Any, method: SignatureMethod,
                      store: TrustStore) -> list[x509.Certificate]:
    """Trust-store certificates worth trying for a signature that embeds none.

    Only keys of the signature's type; those whose serial number KeyInfo
    names (``X509IssuerSerial``) first.
    """
    kind: tuple[type, ...]
    if method.name.startswith("ECDSA_"):
        kind = (ec.EllipticCurvePublicKey,)
    elif method.name.startswith("DSA_"):
        kind = (dsa.DSAPublicKey,)
    else:
        kind = (rsa.RSAPublicKey,)
    serials = {(el.text or "").strip() for el in signature.iterfind(
        "ds:KeyInfo/ds:X509Data/ds:X509IssuerSerial/ds:X509SerialNumber", _NS)}
    fitting = [c for c in store.certificates if isinstance(c.public_key(), kind)]
    fitting.sort(key=lambda c: str(c.serial_number) not in serials)
    return fitting[:_MAX_STORE_CANDIDATES]


def _same(a: x509.Certificate, b: x509.Certificate) -> bool:
    return a is b or a.public_bytes(serialization.Encoding.DER) == b.public_bytes(
        serialization.Encoding.DER)


def _leaf_first(certificates: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """Certificates that issued none of the others (likely signers) come first."""
    def issues_another(cert: x509.Certificate) -> bool:
        return any(o is not cert and o.issuer == cert.subject and o.subject != cert.subject
                   for o in certificates)
    return sorted(certificates, key=issues_another)


# --- wording --------------------------------------------------------------------------------------


def _algorithm_text(inspected: _Inspected, public_key: PublicKeyTypes) -> str:
    method = inspected.signature_method
    text = method.name.replace("_", "-")
    digest = inspected.digest_method.name
    if digest.replace("_", "") not in method.name.replace("_", ""):
        text += f" with {digest.replace('_', '-')} digests"
    weak = "SHA1" in method.name or digest == "SHA1" or method.name.startswith("DSA_")
    if weak:
        text += ", a weak algorithm"
    if isinstance(public_key, (rsa.RSAPublicKey, dsa.DSAPublicKey)) and public_key.key_size < 2048:
        text += f", a weak {public_key.key_size}-bit key"
    return text


def _label(signature: Any, index: int, count: int) -> str:
    if count == 1:
        return ""
    ident = signature.get("Id")
    return f"signature {index + 1} of {count}" + (f" (Id {ident!r})" if ident else "")


def _common_name(cert: x509.Certificate) -> str:
    try:
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if names:
            return str(names[0].value)
        return cert.subject.rfc4514_string() or "a certificate with an empty subject"
    except ValueError:
        return "a certificate with an unreadable subject"


def _subject(cert: x509.Certificate | None) -> str | None:
    if cert is None:
        return None
    try:
        return cert.subject.rfc4514_string()
    except ValueError:
        return None


def _path(element: Any) -> str:
    """``feed/entry[1]/content/alert/Signature``-style path (0-based, index when repeated)."""
    parts = []
    while element is not None:
        name = etree.QName(element).localname
        parent = element.getparent()
        if parent is not None:
            same = [s for s in parent if s.tag == element.tag]
            if len(same) > 1:
                name += f"[{same.index(element)}]"
        parts.append(name)
        element = parent
    return "/".join(reversed(parts))


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=False, remove_blank_text=False)
