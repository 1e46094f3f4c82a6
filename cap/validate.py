"""Validation of whole documents: a CAP alert, an EDXL-DE distribution, or an Atom/RSS feed.

:func:`validate` never raises for bad input: refusals (unsafe or malformed
XML, a root that is not CAP) become error findings, so a caller always gets a
:class:`Report` it can print or serialize.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cap.errors import NotCap, XmlRefused
from cap.findings import Finding, Findings, Severity
from cap.model import XMLDSIG_NS, Alert
from cap.parse import read_alert, root_kind
from cap.profiles import Profile, get_profile
from cap.signature import SignatureResult, SignatureStatus, verify_signature
from cap.xml import DEFAULT_MAX_BYTES, XmlTree, parse_xml

if TYPE_CHECKING:
    from cap.signature import TrustStore

__all__ = ["AlertReport", "Report", "validate"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertReport:
    """The outcome for one alert: the model (None when invalid), findings, signature."""

    path: str
    alert: Alert | None
    findings: tuple[Finding, ...]
    signature: SignatureResult | None = None

    @property
    def valid(self) -> bool:
        """True when the alert broke no rule."""
        return self.alert is not None and not any(f.is_error for f in self.findings)


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """The outcome for one document.

    ``kind`` is ``alert``, ``edxl``, ``atom``, ``rss``, or ``refused`` when the
    bytes could not be read as any of them. ``findings`` holds document-level
    findings (XML, feed and EDXL rules); each alert's own are in ``alerts``.
    """

    kind: str
    profile: str
    findings: tuple[Finding, ...]
    alerts: tuple[AlertReport, ...] = field(default=())

    @property
    def all_findings(self) -> list[Finding]:
        """Every finding, document-level first, then alert by alert."""
        out = list(self.findings)
        for alert in self.alerts:
            out.extend(alert.findings)
        return out

    @property
    def errors(self) -> list[Finding]:
        """Every error finding."""
        return [f for f in self.all_findings if f.is_error]

    @property
    def warnings(self) -> list[Finding]:
        """Every warning finding."""
        return [f for f in self.all_findings if not f.is_error]

    @property
    def valid(self) -> bool:
        """True when the document and every alert in it broke no rule."""
        return not any(f.is_error for f in self.findings) and all(a.valid for a in self.alerts)

    @property
    def signature(self) -> SignatureStatus:
        """``invalid`` if any signature fails, else ``valid`` if any verifies, else ``absent``."""
        statuses = {a.signature.status for a in self.alerts if a.signature is not None}
        if SignatureStatus.INVALID in statuses:
            return SignatureStatus.INVALID
        if SignatureStatus.VALID in statuses:
            return SignatureStatus.VALID
        return SignatureStatus.ABSENT


def _refusal(exc: XmlRefused | NotCap) -> Finding:
    line = exc.line if isinstance(exc, XmlRefused) else None
    column = exc.column if isinstance(exc, XmlRefused) else None
    return Finding(severity=Severity.ERROR, code=exc.code, path="/", message=exc.message,
                   fix=exc.fix, line=line, column=column)


def _has_signature(raw: object) -> bool:
    return isinstance(raw, dict) and f"{XMLDSIG_NS}:Signature" in raw


def _check_alert(raw: object, ns: str, path: str, profile: Profile,
                 signature_of: bytes | None, trust_store: TrustStore | None,
                 alternatives: tuple[bytes, ...] = ()) -> AlertReport:
    """Read and check one alert; verify its signature over ``signature_of`` (or ``alternatives``).

    ``signature_of`` None skips the signature check altogether.
    """
    findings = Findings()
    alert, _ = read_alert(raw, ns, path=path, findings=findings)
    if alert is not None:
        findings.extend(profile.check(alert, path=path))
    signature = None
    if signature_of is not None:
        if _has_signature(raw) and not signature_of:
            signature = SignatureResult(
                status=SignatureStatus.INVALID,
                message="the signed alert could not be isolated from its container (base64 "
                        "or escaped content), so its signature was not verified")
        elif _has_signature(raw):
            signature = verify_signature(signature_of, trust_store=trust_store)
            for other in alternatives:
                if signature.status is not SignatureStatus.INVALID:
                    break
                signature = verify_signature(other, trust_store=trust_store)
        else:
            signature = SignatureResult(status=SignatureStatus.ABSENT, message="not signed")
        _signature_findings(findings, path, signature, trust_store is not None)
    return AlertReport(path=path, alert=alert, findings=tuple(findings.items),
                       signature=signature)


def _signature_findings(findings: Findings, path: str, signature: SignatureResult,
                        required: bool) -> None:
    """Signature problems are errors when a trust store was given, else warnings.

    A trust store says the caller relies on signatures; without one, the
    signature is reported (``Report.signature``) but does not decide validity,
    because the CAP itself may be perfectly good.
    """
    report = findings.error if required else findings.warning
    if signature.status is SignatureStatus.INVALID:
        report("signature-invalid", f"{path}/Signature",
               f"the XML signature does not verify: {signature.message}",
               "sign the final document again, or use a certificate in the trust store"
               if signature.trusted is False else
               "sign the final bytes again; any change after signing breaks the signature")
    elif signature.status is SignatureStatus.ABSENT and required:
        report("signature-missing", path, "the alert is not signed, but a trust store was "
               "given, so a signature is required", "sign the alert (XMLDSig, enveloped)")


def validate(data: bytes, *, profile: str | Profile = "oasis",
             trust_store: TrustStore | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
             check_signature: bool = True) -> Report:
    """Validate a CAP alert, an EDXL-DE distribution or an Atom/RSS feed.

    ``profile`` names the rule set (``oasis``, ``ipaws``, ``cap-cp``,
    ``cap-au``) applied on top of the OASIS rules. Signatures are verified
    against the certificate in the document, and against ``trust_store`` when
    one is given.
    """
    chosen = get_profile(profile) if isinstance(profile, str) else profile
    try:
        tree = parse_xml(data, max_bytes=max_bytes)
        kind = root_kind(tree)
    except (XmlRefused, NotCap) as exc:
        return Report(kind="refused", profile=chosen.name, findings=(_refusal(exc),))
    if kind == "alert":
        report = _check_alert(tree.root, tree.root_ns, "alert", chosen,
                              _document_bytes(data) if check_signature else None, trust_store)
        return Report(kind=kind, profile=chosen.name, findings=tuple(tree.warnings),
                      alerts=(report,))
    try:
        return _validate_container(data, tree, kind, chosen, trust_store, check_signature)
    except NotCap as exc:
        return Report(kind="refused", profile=chosen.name,
                      findings=(*tree.warnings, _refusal(exc)))


def _document_bytes(data: bytes) -> bytes:
    """The bytes as the signature verifier should see them: no whitespace before ``<?xml``."""
    stripped = data.lstrip(b" \t\r\n")
    return stripped if stripped.startswith(b"<?xml") else data


def _validate_container(data: bytes, tree: XmlTree, kind: str, profile: Profile,
                        trust_store: TrustStore | None, check_signature: bool) -> Report:
    if kind == "edxl":
        from cap.edxl import read_distribution

        distribution, container_findings = read_distribution(tree)
        embedded = list(distribution.embedded)
    else:
        from cap.feeds import read_feed

        feed, container_findings = read_feed(tree)
        embedded = [e for entry in feed.entries for e in entry.embedded]
    signed_bytes = _signed_alert_bytes(_document_bytes(data)) if check_signature else {}
    reports = []
    for item in embedded:
        identifier = item.raw.get(f"{item.ns}:identifier") if isinstance(item.raw, dict) else None
        candidates = signed_bytes.get(str(identifier), (b"",))
        reports.append(_check_alert(item.raw, item.ns, item.path, profile,
                                    candidates[0] if check_signature else None, trust_store,
                                    candidates[1:]))
    return Report(kind=kind, profile=profile.name,
                  findings=tuple(tree.warnings) + tuple(container_findings),
                  alerts=tuple(reports))


def _signed_alert_bytes(data: bytes) -> dict[str, tuple[bytes, ...]]:
    """Standalone bytes of each signed CAP alert inside a container, by identifier.

    Two candidates per alert: the alert as a document of its own (namespace
    declarations it inherits but does not use removed), which is how
    publishers sign before wrapping; then the alert with everything it
    inherits, for a signature made in place. The document already passed
    :func:`cap.xml.parse_xml` (no DTD, no entities), and lxml is told not to
    resolve or fetch anything anyway.
    """
    from copy import deepcopy

    from lxml import etree

    from cap.parse import CAP_VERSIONS

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return {}
    out: dict[str, tuple[bytes, ...]] = {}
    for ns in CAP_VERSIONS:
        for element in root.iter(f"{{{ns}}}alert"):
            if element.find(f"{{{XMLDSIG_NS}}}Signature") is None:
                continue
            identifier = element.findtext(f"{{{ns}}}identifier")
            standalone = deepcopy(element)
            etree.cleanup_namespaces(standalone)
            out[str(identifier.strip() if identifier else None)] = (
                etree.tostring(standalone), etree.tostring(element))
    return out
