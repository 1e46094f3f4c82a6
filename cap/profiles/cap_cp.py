"""The Canadian Profile of CAP (CAP-CP).

Spec: "CAP-CP Introduction and Rules" (Canadian Association for Public Alerting
and Notification, CAPAN; http://capan.ca/uploads/CAP-CP/CAP-CP_Intro_Rules_Beta_0.4.pdf),
with its Event References and Location References lists. Reference
implementation: google/cap-library ``profile/ca/CanadianProfile.java`` and its
test ``CanadianProfileTest.java``. "cl" below names the cap-library reason and
"rule N" the numbered CAP-CP rule it implements.

Rules. Paths are under the alert's own path; ``i``, ``j`` are 0-based indexes.

Error rules:

- ``cap-cp-code-required`` (``code``): a ``<code>`` starting with
  ``profile:CAP-CP:`` names the CAP-CP version, e.g. ``profile:CAP-CP:0.4``.
  cl VERSION_CODE_REQUIRED; rule 3.
- ``cap-cp-info-required`` (``info``): an Alert, Update or Cancel has an
  ``<info>`` (Ack and Error need none). cl IS_REQUIRED; rule 5.
- ``cap-cp-event-codes-must-match`` (``info[i]/eventCode``): every info has
  the eventCodes of info[0] (one subject event per message). cl
  EVENT_CODES_MUST_MATCH; rule 2.
- ``cap-cp-event-code-required`` (``info[i]/eventCode``): an eventCode whose
  valueName starts with ``profile:CAP-CP:Event:``. cl
  RECOGNIZED_EVENT_CODE_REQUIRED; rule 8.
- ``cap-cp-area-required`` (``info[i]/area``): at least one area. cl
  AREA_IS_REQUIRED; rule 10.
- ``cap-cp-geocode-required`` (``info[i]/area[j]/geocode``): each area has a
  geocode whose valueName starts with ``profile:CAP-CP:Location``. cl
  AREA_GEOCODE_IS_REQUIRED; rule 9.

Warning rules (recommendations):

- ``cap-cp-english-and-french`` (the alert): the infos include English
  (``en-CA`` or ``en-US``) and French (``fr-CA``). Language tags are compared
  without regard to case (cl compares them exactly) and the warning is not
  given when there is no info at all. cl ENGLISH_AND_FRENCH; rule 6.
- ``cap-cp-expires-recommended`` (``info[i]/expires``): cl
  EXPIRES_STRONGLY_RECOMMENDED; rule 13.
- ``cap-cp-sender-name-recommended`` (``info[i]/senderName``): present and not
  blank. cl SENDER_NAME_STRONGLY_RECOMMENDED; rule 14.
- ``cap-cp-response-type-recommended`` (``info[i]/responseType``) and
  ``cap-cp-instruction-recommended`` (``info[i]/instruction``): cl
  RESPONSE_TYPE_STRONGLY_RECOMMENDED / INSTRUCTION_STRONGLY_RECOMMENDED;
  rule 15.
- ``cap-cp-polygon-or-circle-recommended`` (``info[i]/area[0]``): an info
  with areas has a polygon or circle in at least one of them. cl
  CIRCLE_POLYGON_ENCOURAGED; rule 18.

Not checked:

- UPDATE_OR_CANCEL_MUST_REFERENCE (rule 12): that an Update or Cancel has
  ``references`` is a base CAP 1.2 rule already enforced by ``cap/parse.py``
  (``cap-references-required``); that it references *all* active messages
  needs the sender's earlier alerts, which one :class:`~cap.model.Alert` lacks.
- Rule 4 (time zone in every time value) is a base CAP 1.2 rule enforced by
  the parser. Older cap-library versions also flagged a zero UTC offset on
  sent/effective/onset/expires; the current class dropped that heuristic, and
  so do we (Canadian producers such as ECCC legitimately send UTC).
- Rule 7 (established ``<event>`` values), the values of CAP-CP event codes
  and of CAP-CP location codes: cap-library leaves them as TODOs, and the
  CAP-CP Event and Location References lists are not bundled here.
- Rules 16 (MinorChange) and 17 (AutoTranslated): whether a change is
  substantive or a text machine-translated is not visible in one message
  (cap-library TODOs).
- CIRCLE_POLYGON_PREFERRED: an explanatory note about how CAP-CP reads an area;
  cap-library defines it but never reports it.
"""

from __future__ import annotations

from cap.findings import Finding, Findings
from cap.model import Alert, Info, MsgType
from cap.profiles._common import check_recommended

#: Every CAP-CP version code starts with this, e.g. ``profile:CAP-CP:0.4``.
CAP_CP_CODE_PREFIX = "profile:CAP-CP:"
#: eventCode valueNames from the CAP-CP Event References list start with this.
CAP_CP_EVENT_PREFIX = "profile:CAP-CP:Event:"
#: geocode valueNames from the CAP-CP Location References list start with this.
CAP_CP_LOCATION_PREFIX = "profile:CAP-CP:Location"

_ENGLISH = frozenset({"en-ca", "en-us"})
_FRENCH = frozenset({"fr-ca"})


class CapCpProfile:
    """The Canadian Profile of CAP (see the module docstring for every rule)."""

    name = "cap-cp"
    title = "CAP-CP (Canadian Profile of CAP 1.2)"

    def check(self, alert: Alert, *, path: str = "alert") -> list[Finding]:
        """Return the CAP-CP findings for ``alert``, whose element is at ``path``."""
        f = Findings()
        if not any(code.strip().startswith(CAP_CP_CODE_PREFIX) for code in alert.codes):
            f.error("cap-cp-code-required", f"{path}/code",
                    "CAP-CP requires a <code> naming the CAP-CP version "
                    f"({CAP_CP_CODE_PREFIX}...)",
                    f"add <code>{CAP_CP_CODE_PREFIX}0.4</code>")
        if not alert.infos and alert.msg_type not in (MsgType.ACK, MsgType.ERROR):
            f.error("cap-cp-info-required", f"{path}/info",
                    f"CAP-CP requires an <info> block in a {alert.msg_type.value} message",
                    "add an <info> block (one per language)")
        for i, info in enumerate(alert.infos):
            info_path = f"{path}/info[{i}]"
            if i > 0 and set(info.event_codes) != set(alert.infos[0].event_codes):
                f.error("cap-cp-event-codes-must-match", f"{info_path}/eventCode",
                        "CAP-CP allows one subject event per alert: every <info> must have the "
                        "same <eventCode> values, and these differ from info[0]",
                        "use the event codes of the first <info>, or send a separate alert")
            _check_info(f, info, info_path)
        if alert.infos:
            languages = {info.language.strip().lower() for info in alert.infos}
            if not (languages & _ENGLISH and languages & _FRENCH):
                f.warning("cap-cp-english-and-french", path,
                          "CAP-CP alerts should have two <info> blocks, one in English "
                          "(en-CA) and one in French (fr-CA)",
                          "add the missing language's <info> block")
        return f.items


def _check_info(f: Findings, info: Info, info_path: str) -> None:
    if not any(code.value_name.startswith(CAP_CP_EVENT_PREFIX) for code in info.event_codes):
        f.error("cap-cp-event-code-required", f"{info_path}/eventCode",
                "CAP-CP requires an <eventCode> from the CAP-CP Event References list "
                f"(valueName {CAP_CP_EVENT_PREFIX}...) matching <event>",
                f"add <eventCode><valueName>{CAP_CP_EVENT_PREFIX}0.4</valueName>"
                "<value>...</value></eventCode>")
    if not info.areas:
        f.error("cap-cp-area-required", f"{info_path}/area",
                "CAP-CP requires at least one <area> in every <info>",
                "add an <area> with CAP-CP location geocodes")
    for j, area in enumerate(info.areas):
        if not any(g.value_name.startswith(CAP_CP_LOCATION_PREFIX) for g in area.geocodes):
            f.error("cap-cp-geocode-required", f"{info_path}/area[{j}]/geocode",
                    "CAP-CP requires in every <area> a <geocode> from the CAP-CP Location "
                    f"References list (valueName {CAP_CP_LOCATION_PREFIX}...)",
                    f"add <geocode><valueName>{CAP_CP_LOCATION_PREFIX}:0.3</valueName>"
                    "<value>SGC code</value></geocode>")
    check_recommended(f, "cap-cp", "CAP-CP", info, info_path)
