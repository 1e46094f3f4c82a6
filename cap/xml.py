"""Safe, sans-IO XML parsing for everything capcast reads (CAP, EDXL-DE, Atom, RSS).

Bytes go in, a dict tree (xmltodict's shape, with namespace-qualified keys
``"<namespace uri>:<local name>"``) comes out. Before and during parsing the
input is checked against the ways XML is used to attack or confuse a parser:

* a size limit (1 MiB by default) checked before any parsing;
* DTDs are refused outright, so entity expansion ("billion laughs") and
  external entities (XXE) can never happen, and nothing is fetched or read;
* XInclude elements are refused (we never process them, but a document that
  asks for them is not one we should pass on);
* nesting deeper than a limit is refused;
* bytes that contradict the declared encoding are refused, naming the place;
* a byte-order mark or whitespace before the XML declaration is accepted with
  a warning, because real feeds do it and it is harmless once stripped;
* undeclared namespace prefixes and every other well-formedness error are
  refused with the line and column.

Nothing here does I/O; the caller reads the bytes.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.parsers import expat

import xmltodict

from cap.errors import XmlRefused
from cap.findings import Finding, Severity

DEFAULT_MAX_BYTES = 1 << 20
DEFAULT_MAX_DEPTH = 100
XINCLUDE_NS = "http://www.w3.org/2001/XInclude"

_XML_DECL = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._\-]+)[\"']", re.DOTALL)
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SINGLE_BYTE = {"latin-1", "iso8859-1", "cp1252", "iso8859-15", "cp1250", "iso8859-2"}
_WIDE = {"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"}


@dataclass(slots=True)
class XmlTree:
    """A parsed XML document.

    ``root_ns`` and ``root_name`` split the root element's qualified name;
    ``root`` is the root element's content as xmltodict builds it (``None``
    for an empty element, a ``str`` for text only, else a ``dict``).
    """

    root_ns: str
    root_name: str
    root: Any
    encoding: str
    warnings: list[Finding] = field(default_factory=list)


def split_qname(key: str) -> tuple[str, str]:
    """Split an xmltodict key ``"ns uri:local"`` into ``(ns uri, local)``."""
    i = key.rfind(":")
    if i == -1:
        return "", key
    return key[:i], key[i + 1:]


def _line_col(text: bytes, offset: int) -> tuple[int, int]:
    line = text.count(b"\n", 0, offset) + 1
    column = offset - (text.rfind(b"\n", 0, offset) + 1) + 1
    return line, column


def _canonical_codec(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _prepare(data: bytes, warnings: list[Finding]) -> tuple[bytes, str]:
    """Check the encoding and return UTF-8 bytes ready for expat.

    Returns the bytes to parse (always UTF-8) and the encoding the document
    was written in.
    """
    bom_encoding = None
    for bom, name in _BOMS:
        if data.startswith(bom):
            bom_encoding = name
            data = data[len(bom):]
            warnings.append(Finding(
                severity=Severity.WARNING, code="xml-byte-order-mark", path="/",
                message=f"the document starts with a {name.upper()} byte-order mark",
                fix="omit the byte-order mark; UTF-8 without one is the norm for CAP"))
            break

    if bom_encoding in _WIDE:
        try:
            text = data.decode(bom_encoding)
        except UnicodeDecodeError as exc:
            raise XmlRefused("xml-encoding-mismatch",
                             f"bytes at offset {exc.start} are not valid {bom_encoding.upper()} "
                             "as the byte-order mark says") from None
        declared = _XML_DECL.match(text.lstrip().encode("ascii", "replace"))
        if declared:
            canon = _canonical_codec(declared.group(1).decode())
            if canon is not None and canon not in _WIDE:
                raise XmlRefused("xml-encoding-mismatch",
                                 f"the byte-order mark says {bom_encoding.upper()} but the XML "
                                 f"declaration says encoding=\"{declared.group(1).decode()}\"",
                                 line=1, column=1,
                                 fix="make the declaration match how the bytes are encoded")
        data = text.encode("utf-8")
        encoding = bom_encoding
        return _strip_leading_space(data, warnings), encoding

    if data[:4] in (b"<\x00?\x00", b"\x00<\x00?"):
        # UTF-16 without a byte-order mark.
        enc = "utf-16-le" if data[0] == 0x3C else "utf-16-be"
        try:
            data = data.decode(enc).encode("utf-8")
        except UnicodeDecodeError as exc:
            raise XmlRefused("xml-encoding-mismatch",
                             f"bytes at offset {exc.start} are not valid {enc.upper()}") from None
        return _strip_leading_space(data, warnings), enc

    data = _strip_leading_space(data, warnings)
    declared = _XML_DECL.match(data, 0, 400)
    declared_name = declared.group(1).decode("ascii") if declared else "UTF-8"
    canon = _canonical_codec(declared_name)
    if canon is None:
        raise XmlRefused("xml-unknown-encoding",
                         f"the XML declaration names an unknown encoding \"{declared_name}\"",
                         line=1, column=1, fix="declare encoding=\"UTF-8\" and encode the bytes so")
    if bom_encoding == "utf-8" and canon != "utf-8":
        raise XmlRefused("xml-encoding-mismatch",
                         f"the byte-order mark says UTF-8 but the XML declaration says "
                         f"encoding=\"{declared_name}\"", line=1, column=1,
                         fix="make the declaration match how the bytes are encoded")
    if canon in _WIDE:
        raise XmlRefused("xml-encoding-mismatch",
                         f"the XML declaration says encoding=\"{declared_name}\" but the bytes "
                         "are 8-bit text", line=1, column=1,
                         fix="declare the encoding the bytes are really in (usually UTF-8)")
    try:
        text = data.decode(canon)
    except UnicodeDecodeError as exc:
        line, column = _line_col(data, exc.start)
        raise XmlRefused("xml-encoding-mismatch",
                         f"byte 0x{data[exc.start]:02X} is not valid {declared_name}"
                         + (" (the declared encoding)" if declared else
                            " (no encoding is declared, so UTF-8 applies)"),
                         line=line, column=column,
                         fix="re-encode the document as UTF-8, or declare the encoding it is in",
                         ) from None
    if canon == "utf-8":
        return data, canon
    if canon in _SINGLE_BYTE and not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            raise XmlRefused(
                "xml-encoding-mismatch",
                f"the XML declaration says encoding=\"{declared_name}\" but the text is "
                "UTF-8; decoding it as declared would garble every accented letter",
                line=1, column=1, fix="declare encoding=\"UTF-8\"")
    return text.encode("utf-8"), canon


def _strip_leading_space(data: bytes, warnings: list[Finding]) -> bytes:
    stripped = data.lstrip(b" \t\r\n")
    if len(stripped) != len(data) and stripped.startswith(b"<?xml"):
        warnings.append(Finding(
            severity=Severity.WARNING, code="xml-leading-whitespace", path="/",
            message=f"{len(data) - len(stripped)} whitespace characters precede the XML "
                    "declaration (not well-formed XML; accepted after stripping them)",
            fix="start the document with <?xml"))
        return stripped
    return data


class _Refusal(Exception):
    """Raised inside expat handlers; converted to XmlRefused with the position."""

    def __init__(self, code: str, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fix = fix


class _GuardedExpat:
    """Stands in for the ``expat`` module in ``xmltodict.parse``.

    Creates a real expat parser, refuses any DTD, and wraps the element
    handler that xmltodict installs so that nesting depth and XInclude are
    checked on the way in.
    """

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.parser: Any = None

    def ParserCreate(self, encoding: str | None, separator: str | None) -> _GuardedParser:  # noqa: N802
        parser = expat.ParserCreate("UTF-8", separator)
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

        def refuse_dtd(name: str, *_: object) -> None:
            raise _Refusal("xml-dtd-forbidden",
                           f"the document has a DOCTYPE declaration (<!DOCTYPE {name} ...>); "
                           "DTDs and entities are never processed",
                           fix="remove the DOCTYPE; CAP needs none")

        def refuse_entity(*_: object) -> int:
            raise _Refusal("xml-entity-forbidden", "external entities are never resolved")

        parser.StartDoctypeDeclHandler = refuse_dtd
        parser.ExternalEntityRefHandler = refuse_entity
        self.parser = parser
        return _GuardedParser(parser, self.max_depth)


class _GuardedParser:
    __slots__ = ("_max_depth", "_parser")

    def __init__(self, parser: Any, max_depth: int) -> None:
        object.__setattr__(self, "_parser", parser)
        object.__setattr__(self, "_max_depth", max_depth)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "StartElementHandler":
            value = self._guard_start(value)
        setattr(self._parser, name, value)

    def _guard_start(self, start: Callable[[str, Any], None]) -> Callable[[str, Any], None]:
        path = start.__self__.path  # type: ignore[attr-defined]
        max_depth = self._max_depth

        def guarded_start(name: str, attrs: Any) -> None:
            if len(path) >= max_depth:
                raise _Refusal("xml-too-deep",
                               f"elements are nested more than {max_depth} levels deep")
            if name.startswith(XINCLUDE_NS):
                raise _Refusal("xml-xinclude-forbidden",
                               "the document uses XInclude (<xi:include>); capcast never "
                               "fetches or includes other documents",
                               fix="inline the content instead of including it")
            start(name, attrs)

        return guarded_start


_EXPAT_CODES = {
    "unbound prefix": ("xml-unbound-prefix",
                       "a namespace prefix is used but never declared",
                       "declare it, e.g. xmlns:cap=\"urn:oasis:names:tc:emergency:cap:1.2\" "
                       "on the root element"),
    "undefined entity": ("xml-undefined-entity",
                         "an entity reference (&name;) is not one of XML's five predefined "
                         "entities; DTDs are not processed, so no other entity is defined",
                         "write the character itself or a numeric reference like &#233;"),
}


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES,
              max_depth: int = DEFAULT_MAX_DEPTH) -> XmlTree:
    """Parse ``data`` safely into an :class:`XmlTree`.

    Raises :class:`~cap.errors.XmlRefused` with a stable ``code`` and, where
    it applies, the line and column of the problem.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"parse_xml takes bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise XmlRefused("xml-too-large",
                         f"the document is {len(data):,} bytes; the limit is {max_bytes:,} bytes",
                         fix="send a smaller document, or raise the size limit")
    if not data.strip():
        raise XmlRefused("xml-empty", "the document is empty", line=1, column=1)
    warnings: list[Finding] = []
    utf8, encoding = _prepare(data, warnings)
    guard = _GuardedExpat(max_depth)
    try:
        tree = xmltodict.parse(utf8, expat=guard, process_namespaces=True,
                               namespace_separator=":", disable_entities=True)
    except _Refusal as exc:
        p = guard.parser
        raise XmlRefused(exc.code, exc.message, line=p.CurrentLineNumber,
                         column=p.CurrentColumnNumber + 1, fix=exc.fix) from None
    except expat.ExpatError as exc:
        reason = expat.errors.messages[exc.code]
        code, message, fix = _EXPAT_CODES.get(
            reason, ("xml-malformed", f"the XML is not well-formed: {reason}", None))
        raise XmlRefused(code, message, line=exc.lineno, column=exc.offset + 1, fix=fix) from None
    except ValueError as exc:
        # xmltodict's own guard for entity declarations; unreachable while DTDs
        # are refused first, kept so that no ValueError ever escapes.
        raise XmlRefused("xml-entity-forbidden", str(exc)) from None
    if not tree:
        raise XmlRefused("xml-empty", "the document has no root element")
    (root_key, root), = tree.items()
    ns, name = split_qname(root_key)
    return XmlTree(root_ns=ns, root_name=name, root=root, encoding=encoding, warnings=warnings)
