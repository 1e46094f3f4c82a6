"""The CAP 1.2 USA Integrated Public Alert and Warning System (IPAWS) Profile v1.0.

Spec: OASIS "Common Alerting Protocol, v. 1.2 USA Integrated Public Alert and
Warning System Profile Version 1.0", Committee Specification 01, 13 October 2009
(https://docs.oasis-open.org/emergency/cap/v1.2/ipaws-profile/v1.0/). Reference
implementation: google/cap-library ``profile/us/Ipaws1Profile.java`` (and its
test ``Ipaws1ProfileTest.java``); "cap-library" below means that class.

Rules. Paths are under the alert's own path; ``i``, ``j``, ``k`` are 0-based
indexes. "cl" names the cap-library reason; "spec" the profile's element entry.

Error rules:

- ``ipaws-code-required`` (``code``): ``<code>IPAWSv1.0</code>`` is present.
  cl VERSION_CODE_REQUIRED; spec <code>.
- ``ipaws-categories-must-match`` (``info[i]/category``): every info has the
  categories of info[0]. cl CATEGORIES_MUST_MATCH; spec <info>.
- ``ipaws-event-codes-must-match`` (``info[i]/eventCode``): every info has the
  eventCodes of info[0]. cl EVENT_CODES_MUST_MATCH; spec <info>.
- ``ipaws-expires-required`` (``info[i]/expires``): expires is present.
  cl EXPIRES_IS_REQUIRED; spec <expires>.
- ``ipaws-same-event-code-required`` (``info[i]/eventCode``): an eventCode
  named SAME exists. cl SAME_EVENT_CODE_REQUIRED; spec <eventCode>.
- ``ipaws-same-event-code-repeated`` (``info[i]/eventCode[j]``): only one
  SAME eventCode ("one and only one"). cl SAME_EVENT_CODE_REQUIRED.
- ``ipaws-same-event-code-invalid`` (``info[i]/eventCode[j]``): the SAME
  event code is three capital letters (cl checks the length only).
  cl SAME_EVENT_CODE_REQUIRED; spec <eventCode> "SAME-standard three-letter".
- ``ipaws-area-required`` (``info[i]/area``): at least one area.
  cl AREA_IS_REQUIRED; spec <area>.
- ``ipaws-eas-org-invalid`` (``info[i]/parameter[j]``): an EAS-ORG value is a
  SAME originator code (EAS, CIV, WXR, PEP). spec <parameter> ("a value of
  SAME ORG code"), 47 CFR 11.31(d); a TODO in cl.

Warning rules (recommendations):

- ``ipaws-sent-utc-offset`` (``sent``) and ``ipaws-expires-utc-offset``
  (``info[i]/expires``): the UTC offset should not be 0. cl
  SENT_INCLUDE_TIMEZONE_OFFSET / EXPIRES_INCLUDE_TIMEZONE_OFFSET (errors there).
- ``ipaws-effective-ignored`` (``info[i]/effective``) and
  ``ipaws-onset-ignored`` (``info[i]/onset``): IPAWS ignores them, alerts are
  effective on issuance. cl INFO_EFFECTIVE_IS_IGNORED / INFO_ONSET_IS_IGNORED;
  spec <effective>, <onset>.
- ``ipaws-description-recommended`` (``info[i]/description``) and
  ``ipaws-instruction-recommended`` (``info[i]/instruction``): present and not
  blank. cl INFO_DESCRIPTION_RECOMMENDED / INFO_INSTRUCTION_RECOMMENDED.
- ``ipaws-same-geocode-recommended`` (``info[i]/area[j]/geocode``): the area
  has a SAME geocode with a 6-digit value. cl AREA_SAME_GEOCODE_RECOMMENDED;
  spec <geocode>.
- ``ipaws-same-geocode-invalid`` (``info[i]/area[j]/geocode[k]``): a SAME
  geocode should be six digits (PSSCCC). cl AREA_SAME_GEOCODE_RECOMMENDED.
- ``ipaws-eas-org-missing`` (``info[i]/parameter``): an EAS-ORG parameter is
  present, unless a ``BLOCKCHANNEL`` ``EAS`` parameter keeps the alert off
  EAS. spec <parameter> ("an alert intended for EAS and/or HazCollect
  dissemination MUST include ... EAS-ORG"); a TODO in cl. A warning because
  the intent is not visible in the message.
- ``ipaws-cmam-text-too-long`` (``info[i]/parameter[j]``): ``CMAMtext`` fits
  in 90 and ``CMAMlongtext`` in 360 characters. 47 CFR 10.430 (WEA 90/360
  characters), IPAWS-OPEN practice; not in cl.

Differences from cap-library, on purpose:

* A zero UTC offset on ``sent``/``expires`` is a warning, not an error. The
  profile only says the value MUST include the offset, which CAP 1.2 already
  requires (``cap/parse.py`` enforces it); "an offset of 0 is unlikely for US
  alerts" is cap-library's own heuristic, and its maintainers agreed it should
  be a recommendation (google/cap-library issue #23, "IPAWS timezone offset
  errors should be recommendations").
* The SAME eventCode rule is split into missing / repeated / malformed, each
  pointing at the offending element, and values are checked as three capital
  letters (cap-library checks the length only). SAME geocodes are likewise
  checked as six digits.
* EAS-ORG and the WEA text lengths, TODOs or absent in cap-library, are checked.

Not checked:

* UPDATE_OR_CANCEL_MUST_REFERENCE: that an Update or Cancel has ``references``
  is a base CAP 1.2 rule already enforced by ``cap/parse.py``
  (``cap-references-required``). The profile's stronger demand, that *all*
  related unexpired messages be referenced, needs the history of the sender's
  earlier alerts, which a single :class:`~cap.model.Alert` does not carry.
"""

from __future__ import annotations

import re
from datetime import timedelta

from cap.findings import Finding, Findings
from cap.model import Alert, Info
from cap.profiles._common import blank, check_same_as_first

#: The <code> value that identifies the profile version.
IPAWS_CODE = "IPAWSv1.0"
#: SAME originator (ORG) codes allowed in the EAS-ORG parameter (47 CFR 11.31(d)).
SAME_ORIGINATORS = frozenset({"EAS", "CIV", "WXR", "PEP"})
#: Longest WEA texts, in characters, by parameter name (47 CFR 10.430).
WEA_TEXT_LIMITS = {"CMAMtext": 90, "CMAMlongtext": 360}

_SAME_EVENT = re.compile(r"[A-Z]{3}")
_SAME_LOCATION = re.compile(r"\d{6}")
_ZERO = timedelta(0)


class IpawsProfile:
    """CAP 1.2 USA IPAWS Profile v1.0 (see the module docstring for every rule)."""

    name = "ipaws"
    title = "IPAWS v1.0 (FEMA, CAP 1.2 IPAWS profile)"

    def check(self, alert: Alert, *, path: str = "alert") -> list[Finding]:
        """Return the IPAWS findings for ``alert``, whose element is at ``path``."""
        f = Findings()
        if IPAWS_CODE not in (code.strip() for code in alert.codes):
            f.error("ipaws-code-required", f"{path}/code",
                    f"IPAWS v1.0 requires <code>{IPAWS_CODE}</code> to name the profile version",
                    f"add <code>{IPAWS_CODE}</code>")
        if alert.sent.utcoffset() == _ZERO:
            f.warning("ipaws-sent-utc-offset", f"{path}/sent",
                      "<sent> has a UTC offset of 0, which is unlikely for a US alert",
                      "write the sender's local time with its offset, e.g. -05:00")
        first = alert.infos[0] if alert.infos else None
        for i, info in enumerate(alert.infos):
            info_path = f"{path}/info[{i}]"
            if first is not None and i > 0:
                check_same_as_first(f, "ipaws", "IPAWS", info, first, info_path,
                                    fix_suffix=", or send a separate alert")
            _check_info(f, info, info_path)
        return f.items


def _check_info(f: Findings, info: Info, info_path: str) -> None:
    if info.expires is None:
        f.error("ipaws-expires-required", f"{info_path}/expires",
                "IPAWS requires <expires> in every <info>",
                "add <expires> with the time the alert stops being valid")
    elif info.expires.utcoffset() == _ZERO:
        f.warning("ipaws-expires-utc-offset", f"{info_path}/expires",
                  "<expires> has a UTC offset of 0, which is unlikely for a US alert",
                  "write the local time with its offset, e.g. -05:00")
    _check_same_event_code(f, info, info_path)
    if not info.areas:
        f.error("ipaws-area-required", f"{info_path}/area",
                "IPAWS requires at least one <area> in every <info>",
                "add an <area> with SAME geocodes")
    if info.effective is not None:
        f.warning("ipaws-effective-ignored", f"{info_path}/effective",
                  "IPAWS ignores <effective>: alerts are effective upon issuance",
                  "remove <effective>")
    if info.onset is not None:
        f.warning("ipaws-onset-ignored", f"{info_path}/onset",
                  "IPAWS ignores <onset>: alerts are effective upon issuance",
                  "remove <onset>, or state the expected onset in <description>")
    if blank(info.description):
        f.warning("ipaws-description-recommended", f"{info_path}/description",
                  "IPAWS messages should have a meaningful <description>",
                  "describe the hazard in <description>")
    if blank(info.instruction):
        f.warning("ipaws-instruction-recommended", f"{info_path}/instruction",
                  "IPAWS messages should have a meaningful <instruction>",
                  "say what people should do in <instruction>")
    for j, area in enumerate(info.areas):
        area_path = f"{info_path}/area[{j}]"
        same = [(k, g.value) for k, g in enumerate(area.geocodes) if g.value_name == "SAME"]
        for k, value in same:
            if not _SAME_LOCATION.fullmatch(value.strip()):
                f.warning("ipaws-same-geocode-invalid", f"{area_path}/geocode[{k}]",
                          f"SAME geocode {value!r} is not a 6-digit SAME location code "
                          "(extended FIPS, PSSCCC)",
                          "write six digits, e.g. 024031")
        if not any(_SAME_LOCATION.fullmatch(value.strip()) for _, value in same):
            f.warning("ipaws-same-geocode-recommended", f"{area_path}/geocode",
                      "IPAWS areas should have a <geocode> with valueName SAME and a 6-digit "
                      "SAME location code (extended FIPS)",
                      "add <geocode><valueName>SAME</valueName><value>PSSCCC</value></geocode>")
    _check_parameters(f, info, info_path)


def _check_same_event_code(f: Findings, info: Info, info_path: str) -> None:
    same = [(j, code.value) for j, code in enumerate(info.event_codes)
            if code.value_name == "SAME"]
    if not same:
        f.error("ipaws-same-event-code-required", f"{info_path}/eventCode",
                "IPAWS requires exactly one <eventCode> with valueName SAME and a "
                "SAME three-letter event code",
                "add <eventCode><valueName>SAME</valueName><value>CEM</value></eventCode> "
                "with the right code")
        return
    for j, value in same[1:]:
        f.error("ipaws-same-event-code-repeated", f"{info_path}/eventCode[{j}]",
                f"IPAWS allows only one SAME <eventCode>; this one ({value!r}) repeats it",
                "keep one SAME event code; send other events as separate alerts")
    for j, value in same:
        if not _SAME_EVENT.fullmatch(value.strip()):
            f.error("ipaws-same-event-code-invalid", f"{info_path}/eventCode[{j}]",
                    f"SAME <eventCode> {value!r} is not a SAME-standard three-letter code",
                    "write three capital letters, e.g. CEM, FFW or RMT")


def _check_parameters(f: Findings, info: Info, info_path: str) -> None:
    has_eas_org = False
    blocks_eas = False
    for j, parameter in enumerate(info.parameters):
        name, value = parameter.value_name, parameter.value.strip()
        parameter_path = f"{info_path}/parameter[{j}]"
        if name == "EAS-ORG":
            has_eas_org = True
            if value not in SAME_ORIGINATORS:
                f.error("ipaws-eas-org-invalid", parameter_path,
                        f"EAS-ORG {value!r} is not a SAME originator code "
                        f"({', '.join(sorted(SAME_ORIGINATORS))})",
                        "use CIV for civil authorities, WXR for the weather service")
        elif name == "BLOCKCHANNEL" and value == "EAS":
            blocks_eas = True
        limit = WEA_TEXT_LIMITS.get(name)
        if limit is not None and len(parameter.value) > limit:
            f.warning("ipaws-cmam-text-too-long", parameter_path,
                      f"{name} has {len(parameter.value)} characters; WEA shows at most "
                      f"{limit}", f"shorten it to {limit} characters or fewer")
    if not has_eas_org and not blocks_eas:
        f.warning("ipaws-eas-org-missing", f"{info_path}/parameter",
                  "an IPAWS alert meant for EAS or HazCollect must have an EAS-ORG parameter "
                  "(SAME originator code)",
                  "add <parameter><valueName>EAS-ORG</valueName><value>CIV</value></parameter>, "
                  "or BLOCKCHANNEL EAS if it is not for EAS")
