"""The Australian Profile of CAP 1.2 (CAP-AU 1.0).

Spec: OASIS "EDXL Common Alerting Protocol (CAP) v1.2 Australia (AU) Profile
Version 1.0", Committee Specification 02, 05 September 2013
(https://docs.oasis-open.org/emergency/edxl-cap1.2-au/v1.0/), which took over
the Australian Government's CAP-AU-STD (https://govshare.gov.au/xmlui/handle/10772/6494)
and its event list AUeventLIST 1.0. Reference implementation: google/cap-library
``profile/au/AustralianProfile.java``, its data file ``AUeventLIST1.0.csv``
(copied below as :data:`AU_EVENT_LIST`) and its test
``AustralianProfileTest.java``. "cl" below names the cap-library reason.

Rules. Paths are under the alert's own path; ``i``, ``j`` are 0-based indexes.

Error rules:

- ``cap-au-code-required`` (``code``): ``<code>`` is
  ``urn:oasis:names:tc:emergency:cap:1.2:profile:CAP-AU:1.0``.
  cl VERSION_CODE_REQUIRED.
- ``cap-au-info-required`` (``info``): an Alert, Update or Cancel has an
  ``<info>`` (Ack and Error need none). cl INFO_IS_REQUIRED.
- ``cap-au-categories-must-match`` (``info[i]/category``) and
  ``cap-au-event-codes-must-match`` (``info[i]/eventCode``): every info has
  the categories and eventCodes of info[0]. cl CATEGORIES_MUST_MATCH /
  EVENT_CODES_MUST_MATCH.
- ``cap-au-event-code-required`` (``info[i]/eventCode``): the info has an
  eventCode from the authorised list AUeventLIST (see "event list names"
  below). cl ONE_AUTHORIZED_EVENT_CODE_PER_ALERT, plus its recommendation
  RECOGNIZED_EVENT_CODE_NOT_USED for the same condition (merged here, so the
  same gap is reported once).
- ``cap-au-one-event-code`` (``info[i]/eventCode[j]``): the alert uses a
  single AUeventLIST code; this one differs from the first one in the alert.
  cl ONE_AUTHORIZED_EVENT_CODE_PER_ALERT.
- ``cap-au-unknown-event-code`` (``info[i]/eventCode[j]``): the code is in
  AUeventLIST 1.0. cl UNRECOGNIZED_EVENT_CODE.
- ``cap-au-event-mismatch`` (``info[i]/event``): ``<event>`` is the Tier I or
  Tier II event name of the code. Compared without regard to case or repeated
  spaces (cl compares exactly), and only for English infos: the list's names
  are English, so an info in another language cannot match them.
  cl EVENT_AND_EVENT_CODE_MUST_MATCH.
- ``cap-au-events-must-match`` (``info[i]/event``): infos in the same language
  have the same ``<event>``. cl EVENTS_IN_SAME_LANGUAGE_MUST_MATCH.
- ``cap-au-effective-with-cancel`` (``info[i]/effective``): no ``<effective>``
  when msgType is Cancel. cl DO_NOT_USE_EFFECTIVE_WITH_MSGTYPE_CANCEL.
- ``cap-au-area-required`` (``info[i]/area``): at least one area.
  cl AREA_IS_REQUIRED.

Warning rules (recommendations):

- ``cap-au-sender-not-email`` (``sender``): ``<sender>`` is an address like
  ``example@domain`` naming the agency. cl SENDER_SHOULD_BE_EMAIL.
- ``cap-au-test-status`` (``status``): status Test is treated as a log-only
  event and not broadcast. cl TEST_ALERT_WILL_NOT_BE_BROADCAST.
- ``cap-au-expires-recommended`` (``info[i]/expires``),
  ``cap-au-sender-name-recommended`` (``info[i]/senderName``),
  ``cap-au-response-type-recommended`` (``info[i]/responseType``) and
  ``cap-au-instruction-recommended`` (``info[i]/instruction``): cl
  EXPIRES_/SENDER_NAME_/RESPONSE_TYPE_/INSTRUCTION_STRONGLY_RECOMMENDED.
- ``cap-au-geocode-recommended`` (``info[i]/area[j]/geocode``): the area has a
  geocode from a recognised scheme (G-NAF, ISO 3166-2, Gazetteer, postcode;
  :data:`RECOGNISED_GEOCODES`). cl AREA_GEOCODE_IS_RECOMMENDED (spec 2.4).
- ``cap-au-polygon-or-circle-recommended`` (``info[i]/area[0]``): an info with
  areas has a polygon or circle in at least one. cl CIRCLE_POLYGON_ENCOURAGED.
- ``cap-au-category-mismatch`` (``info[i]/category``): the info's categories
  include the CAP category AUeventLIST gives its event code. Not in cl, which
  loads the list's categories but never uses them.

Event list names: cl recognises AUeventLIST codes only under the valueName
``https://govshare.gov.au/xmlui/handle/10772/6495`` (CAP-AU-STD; also used by
NSW RFS and Tasmania Fire Service feeds). The Bureau of Meteorology, a
national CAP-AU producer, names the same list
``urn:oasis:names:tc:emergency:cap:1.2:profile:CAP-AU:1.0:AUeventLIST:1.0``,
in the URN scheme of the OASIS profile code; both are accepted
(:data:`AU_EVENT_LIST_NAMES`).

Not checked:

- UPDATE_OR_CANCEL_MUST_REFERENCE: that an Update or Cancel has ``references``
  is a base CAP 1.2 rule already enforced by ``cap/parse.py``
  (``cap-references-required``); that it references *all* active messages
  needs the sender's earlier alerts, which one :class:`~cap.model.Alert` lacks.
- Times local to the alert area unless it spans time zones (a cl TODO): that
  needs a time-zone lookup of the area, and the model keeps only the offset.
- MinorChange for non-substantive updates (a cl TODO): not visible in one
  message.
- CIRCLE_POLYGON_PREFERRED: an explanatory note that cl defines but never
  reports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cap.findings import Finding, Findings
from cap.model import Alert, Category, Info, MsgType, Status
from cap.profiles._common import check_recommended, check_same_as_first

#: The <code> value that identifies the profile.
CAP_AU_CODE = "urn:oasis:names:tc:emergency:cap:1.2:profile:CAP-AU:1.0"
#: eventCode valueNames that name AUeventLIST 1.0 (see the module docstring).
AU_EVENT_LIST_NAMES = frozenset({
    "https://govshare.gov.au/xmlui/handle/10772/6495",
    "urn:oasis:names:tc:emergency:cap:1.2:profile:CAP-AU:1.0:AUeventLIST:1.0",
})
#: geocode valueNames of the recognised location schemes (CAP-AU 2.4).
RECOGNISED_GEOCODES = frozenset({
    "http://www.psma.com.au/?product=g-naf",
    "http://www.iso.org/iso/country_codes.html",
    "http://www.ga.gov.au/place-name/",
    "http://www.psma.com.au/?product=postcode-boundaries",
})

_EMAIL = re.compile(r"[\w.+-]+@[\w.-]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuEvent:
    """One row of AUeventLIST 1.0: an event code and the event names it stands for."""

    #: The CAP-AU serial number (row number of the list).
    number: int
    #: The eventCode value, e.g. ``bushFire``.
    code: str
    #: The Tier I event name, e.g. ``Fire``.
    tier1: str
    #: The Tier II event name, e.g. ``Bushfire``; empty for Tier I rows.
    tier2: str
    #: The CAP categories the list gives the event.
    categories: tuple[Category, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The event names an ``<event>`` may use with this code."""
        return (self.tier1, self.tier2) if self.tier2 else (self.tier1,)


# CAP-AU #, eventCode, Tier I event, Tier II event, CAP categories: AUeventLIST 1.0 as
# shipped with google/cap-library (AUeventLIST1.0.csv). "water" appears twice.
_AU_EVENT_ROWS: tuple[tuple[int, str, str, str, tuple[str, ...]], ...] = (
    (1, "admin", "Administration", "", ("Other",)),
    (2, "airQuality", "Air Quality", "", ("Health",)),
    (3, "animalHealth", "Animal Health", "", ("Env",)),
    (4, "animalDiseas", "Animal Health", "Animal Disease", ("Env",)),
    (5, "animalFeed", "Animal Health", "Animal Feed", ("Env",)),
    (6, "animalPest", "Animal Health", "Animal Pest", ("Env",)),
    (7, "aqAnimalDiseas", "Animal Health", "Aquatic Animal Disease", ("Env",)),
    (8, "aqAnimalPest", "Animal Health", "Aquatic Animal Pest", ("Env",)),
    (9, "animalWelfar", "Animal Health", "Animal Welfare", ("Env",)),
    (10, "marineDiseas", "Animal Health", "Marine Disease", ("Env",)),
    (11, "marinePest", "Animal Health", "Marine Pest", ("Env",)),
    (12, "aQuarantine", "Animal Health", "Animal Quarantine", ("Env",)),
    (13, "sheepWarning", "Animal Health", "Sheep Grazier Warning", ("Met",)),
    (14, "animalAttack", "Animals", "Animal Attack", ("Env",)),
    (15, "animalDanger", "Animals", "Dangerous Animal", ("Env",)),
    (16, "plague", "Animals", "Plague", ("Env",)),
    (17, "aviation", "Aviation", "", ("Transport",)),
    (18, "aircraftCrsh", "Aviation", "Aircraft Crash", ("Transport",)),
    (19, "aircraft", "Aviation", "Aircraft Incident", ("Transport",)),
    (20, "airportClos", "Aviation", "Airport Closure", ("Transport",)),
    (21, "airspaceClos", "Aviation", "Airspace Closure", ("Transport",)),
    (22, "avLightning", "Aviation", "Airport Lightning Threat", ("Met",)),
    (23, "avThunder", "Aviation", "Airport Thunder Threat", ("Met",)),
    (24, "aviationSec", "Aviation", "Aviation Security", ("Transport",)),
    (25, "fallObject", "Aviation", "Falling Object", ("Transport",)),
    (26, "notam", "Aviation", "Notice To Airmen", ("Transport",)),
    (27, "spaceDebris", "Aviation", "Satellite / Space Re-entry debris", ("Transport",)),
    (28, "civil", "Civil", "", ("Security",)),
    (29, "bldgCollapse", "Civil", "Building Collapse", ("Infra",)),
    (30, "civilEmerg", "Civil", "Civil Emergency", ("Security",)),
    (31, "demonstratin", "Civil", "Demonstration", ("Security",)),
    (32, "civilEvent", "Civil", "Public Event", ("Security",)),
    (33, "volunteer", "Civil", "Volunteer Request", ("Other",)),
    (34, "crime", "Criminal Activity", "", ("Security",)),
    (35, "cyberCrime", "Criminal Activity", "Cyber Crime", ("Security",)),
    (36, "dangerPerson", "Criminal Activity", "Dangerous Person", ("Security",)),
    (37, "terrorism", "Criminal Activity", "Terrorism", ("Security",)),
    (38, "fire", "Fire", "", ("Fire",)),
    (39, "bushFire", "Fire", "Bushfire", ("Fire",)),
    (40, "fireBan", "Fire", "Fire Ban", ("Fire",)),
    (41, "fireDangrLvl", "Fire", "Fire Danger Level", ("Fire",)),
    (42, "forestFire", "Fire", "Forest Fire", ("Fire",)),
    (43, "fireWeather", "Fire", "Fire Weather", ("Fire", "Met",)),
    (44, "grassFire", "Fire", "Grass Fire", ("Fire",)),
    (45, "industryFire", "Fire", "Industrial Fire", ("Fire",)),
    (46, "smoke", "Fire", "Smoke Alert", ("Fire",)),
    (47, "structurFire", "Fire", "Structure Fire", ("Fire",)),
    (48, "TotalFireBan", "Fire", "Total Fire Ban", ("Fire",)),
    (49, "flood", "Flood", "", ("Met",)),
    (50, "damFailure", "Flood", "Dam Failure", ("Infra",)),
    (51, "flashFlood", "Flood", "Flash Flood", ("Met",)),
    (52, "highWater", "Flood", "High Water Level", ("Met",)),
    (53, "kingTide", "Flood", "King Tide", ("Met",)),
    (54, "leveeFailure", "Flood", "Levee Failure", ("Infra",)),
    (55, "stormSurge", "Flood", "Storm Surge", ("Met",)),
    (56, "riverineflod", "Flood", "Riverine Flood", ("Met",)),
    (57, "geologicalHaz", "Geological", "", ("Geo",)),
    (58, "avalanche", "Geological", "Avalanche", ("Geo",)),
    (59, "earthquake", "Geological", "Earthquake", ("Geo",)),
    (60, "karst", "Geological", "Karst Hazard", ("Geo",)),
    (61, "lahar", "Geological", "Lahar", ("Geo",)),
    (62, "landslide", "Geological", "Landslide", ("Geo",)),
    (63, "lavaFlow", "Geological", "Lava Flow", ("Geo",)),
    (64, "magnetcStorm", "Geological", "Magnetic Storm", ("Geo",)),
    (65, "meteor", "Geological", "Meteorite", ("Geo",)),
    (66, "pyroclasFlow", "Geological", "Pyroclastic Flow", ("Geo",)),
    (67, "pyroclaSurge", "Geological", "Pyroclastic Surge", ("Geo",)),
    (68, "tsunami", "Geological", "Tsunami", ("Geo",)),
    (69, "volcanicAsh", "Geological", "Volcanic Ash Cloud", ("Geo",)),
    (70, "volcano", "Geological", "Volcano", ("Geo",)),
    (71, "hazmat", "Hazardous Materials", "", ("CBRNE",)),
    (72, "asbestos", "Hazardous Materials", "Asbestos", ("Health",)),
    (73, "biological", "Hazardous Materials", "Biological Hazard", ("CBRNE",)),
    (74, "chemical", "Hazardous Materials", "Chemical Hazard", ("CBRNE",)),
    (75, "explosive", "Hazardous Materials", "Explosive Hazard", ("CBRNE",)),
    (76, "pollution", "Hazardous Materials", "Major Pollution", ("Health",)),
    (77, "radiological", "Hazardous Materials", "Radiological Hazard", ("CBRNE",)),
    (78, "toxicPlume", "Hazardous Materials", "Toxic Plume", ("CBRNE",)),
    (79, "health", "Health", "", ("Health",)),
    (80, "ambulance", "Health", "Ambulance", ("Health",)),
    (81, "bloodSupply", "Health", "Blood Supply", ("Health",)),
    (82, "communicable", "Health", "Communicable Disease", ("Health",)),
    (83, "drinkingWate", "Health", "Drinking Water", ("Health",)),
    (84, "drugSafety", "Health", "Drug Safety", ("Health",)),
    (85, "drugSupply", "Health", "Drug Supply", ("Health",)),
    (86, "foodSafety", "Health", "Food Safety", ("Health",)),
    (87, "foodSupply", "Health", "Food Supply", ("Health",)),
    (88, "hospital", "Health", "Hospital", ("Health",)),
    (89, "hQuarantine", "Health", "Human Quarantine", ("Health",)),
    (90, "zoonoticDis", "Health", "Zoonotic Disease", ("Health", "Env",)),
    (91, "marine", "Marine", "", ("Met",)),
    (92, "freezngSpray", "Marine", "Freezing Spray", ("Met",)),
    (93, "galeWind", "Marine", "Gale Wind", ("Met",)),
    (94, "HurricFrcWnd", "Marine", "Hurricane Force Wind", ("Met",)),
    (95, "iceberg", "Marine", "Iceberg", ("Met",)),
    (96, "largeSurf", "Marine", "Large Coastal Surf", ("Met",)),
    (97, "largeSwell", "Marine", "Large Swell Waves", ("Met",)),
    (98, "maritimeSec", "Marine", "Maritime / Marine Security", ("Transport",)),
    (99, "nautical", "Marine", "Nautical Incident", ("Transport",)),
    (100, "oilSpill", "Marine", "Oil Spill", ("Transport",)),
    (101, "squall", "Marine", "Squall", ("Met",)),
    (102, "stormFrcWind", "Marine", "Storm Force Wind", ("Met",)),
    (103, "strongWind", "Marine", "Strong Wind", ("Met",)),
    (104, "waterspout", "Marine", "Waterspout", ("Met",)),
    (105, "missingPer", "Missing Person", "", ("Security",)),
    (106, "missingVPer", "Missing Person", "Missing Vulnerable Person", ("Security",)),
    (107, "other", "Other Non-Urgent Alerts", "", ("Other",)),
    (108, "otherUrgent", "Other Urgent Alerts", "", ("Other",)),
    (109, "plant", "Plant Health", "", ("Env",)),
    (110, "plantInfect", "Plant Health", "Plant Infectious Disease", ("Env",)),
    (111, "plantPest", "Plant Health", "Plant Pest", ("Env",)),
    (112, "pQuarantine", "Plant Health", "Plant Quarantine", ("Env",)),
    (113, "reminder", "Preparedness Reminders", "Emergency Preparedness Reminder", ("Other",)),
    (114, "product", "Product Safety", "", ("Safety",)),
    (115, "publicServic", "Public Services", "", ("Infra",)),
    (116, "facilityClos", "Public Services", "Facility Closure", ("Infra",)),
    (117, "facilityLock", "Public Services", "Facility Lockdown", ("Infra",)),
    (118, "facility", "Public Services", "Service or Facility", ("Infra",)),
    (119, "transit", "Public Services", "Transit", ("Transport",)),
    (120, "railway", "Railway", "", ("Transport",)),
    (121, "railIncident", "Railway", "Railway Incident", ("Transport",)),
    (122, "railCrash", "Railway", "Train / Rail Crash", ("Transport",)),
    (123, "rescue", "Rescue", "", ("Rescue",)),
    (124, "distressBcon", "Rescue", "Distress Beacon", ("Rescue",)),
    (125, "road", "Roadway", "", ("Transport",)),
    (126, "bridgClose", "Roadway", "Bridge Closure", ("Transport",)),
    (127, "bridgCollaps", "Roadway", "Bridge Collapse", ("Transport",)),
    (128, "roadHazard", "Roadway", "Hazardous Road Conditions", ("Transport",)),
    (129, "roadCrash", "Roadway", "Motor Vehicle Accident", ("Transport",)),
    (130, "roadClose", "Roadway", "Roadway Closure", ("Transport",)),
    (131, "roadDelay", "Roadway", "Roadway Delay", ("Transport",)),
    (132, "roadIncident", "Roadway", "Roadway Incident", ("Transport",)),
    (133, "roadUsage", "Roadway", "Roadway Usage Condition", ("Transport",)),
    (134, "traffic", "Roadway", "Traffic Report", ("Transport",)),
    (135, "search", "Search", "", ("Rescue",)),
    (136, "waterSearch", "Search", "Over Water Search", ("Rescue",)),
    (137, "landSearch", "Search", "Over Land Search", ("Rescue",)),
    (138, "airSearch", "Search", "Air Search", ("Rescue",)),
    (139, "storm", "Storm", "", ("Met",)),
    (140, "blizzard", "Storm", "Blizzard", ("Met",)),
    (141, "dustStorm", "Storm", "Dust Storm", ("Met",)),
    (142, "hail", "Storm", "Hail", ("Met",)),
    (143, "rainfall", "Storm", "Rainfall", ("Met",)),
    (144, "snowfall", "Storm", "Snowfall", ("Met",)),
    (145, "thunderstorm", "Storm", "Thunderstorm", ("Met",)),
    (146, "tornado", "Storm", "Tornado", ("Met",)),
    (147, "tropCyclone", "Storm", "Tropical Cyclone", ("Met",)),
    (148, "weather", "Storm", "Weather", ("Met",)),
    (149, "temperature", "Temperature", "", ("Met",)),
    (150, "extremeHeat", "Temperature", "Extreme Heat", ("Met",)),
    (151, "exposure", "Temperature", "Exposure", ("Met",)),
    (152, "frost", "Temperature", "Frost", ("Met",)),
    (153, "windChill", "Temperature", "Wind Chill", ("Met",)),
    (154, "testMessage", "Test Message", "", ("Other",)),
    (155, "utility", "Utility", "", ("Infra",)),
    (156, "cable", "Utility", "Cable Service", ("Infra",)),
    (157, "comunication", "Utility", "Communications Service", ("Infra",)),
    (158, "diesel", "Utility", "Diesel Supply", ("Infra",)),
    (159, "electric", "Utility", "Electricity Supply", ("Infra",)),
    (160, "heatingOil", "Utility", "Heating Oil Supply", ("Infra",)),
    (161, "internet", "Utility", "Internet Service", ("Infra",)),
    (162, "landlines", "Utility", "Landline Service", ("Infra",)),
    (163, "Mobiles", "Utility", "Mobile Service", ("Infra",)),
    (164, "naturalGas", "Utility", "Natural Gas Supply", ("Infra",)),
    (165, "petrol", "Utility", "Petrol Supply", ("Infra",)),
    (166, "pipeRupture", "Utility", "Pipeline Rupture", ("Infra",)),
    (167, "satellite", "Utility", "Satellite Service", ("Infra",)),
    (168, "sewer", "Utility", "Sewer System", ("Infra",)),
    (169, "telephone", "Utility", "Telephone Service", ("Infra",)),
    (170, "tripleZero", "Utility", "Triple Zero", ("Infra",)),
    (171, "waste", "Utility", "Waste Management", ("Infra",)),
    (172, "water", "Utility", "Water Supply", ("Infra",)),
    (173, "wind", "Wind", "", ("Met",)),
    (174, "windChange", "Wind", "Wind Change", ("Met",)),
    (175, "water", "Water quality", "", ("Env",)),
    (176, "blueGrnAlgae", "Water quality", "Blue Green Algae", ("Env",)),
)


def _event_list() -> Mapping[str, tuple[AuEvent, ...]]:
    by_code: dict[str, tuple[AuEvent, ...]] = {}
    for number, code, tier1, tier2, categories in _AU_EVENT_ROWS:
        event = AuEvent(number=number, code=code, tier1=tier1, tier2=tier2,
                        categories=tuple(Category(c) for c in categories))
        by_code[code] = (*by_code.get(code, ()), event)
    return MappingProxyType(by_code)


#: AUeventLIST 1.0 by event code (a code may stand for several rows, e.g. ``water``).
AU_EVENT_LIST = _event_list()


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


class CapAuProfile:
    """The Australian Profile CAP-AU 1.0 (see the module docstring for every rule)."""

    name = "cap-au"
    title = "CAP-AU 1.0 (Australian Profile of CAP 1.2)"

    def check(self, alert: Alert, *, path: str = "alert") -> list[Finding]:
        """Return the CAP-AU findings for ``alert``, whose element is at ``path``."""
        f = Findings()
        if CAP_AU_CODE not in (code.strip() for code in alert.codes):
            f.error("cap-au-code-required", f"{path}/code",
                    f"CAP-AU requires <code>{CAP_AU_CODE}</code>",
                    f"add <code>{CAP_AU_CODE}</code>")
        if not alert.infos and alert.msg_type not in (MsgType.ACK, MsgType.ERROR):
            f.error("cap-au-info-required", f"{path}/info",
                    f"CAP-AU requires an <info> block in a {alert.msg_type.value} message",
                    "add an <info> block")
        if not _EMAIL.fullmatch(alert.sender):
            f.warning("cap-au-sender-not-email", f"{path}/sender",
                      f"CAP-AU recommends a <sender> like example@domain naming the agency, "
                      f"not {alert.sender!r}",
                      "use the issuing agency's address, e.g. alerts@ses.example.gov.au")
        if alert.status is Status.TEST:
            f.warning("cap-au-test-status", f"{path}/status",
                      "under CAP-AU a Test alert is treated as a log-only event and is not "
                      "broadcast")
        first_code: str | None = None
        event_by_language: dict[str, str] = {}
        for i, info in enumerate(alert.infos):
            info_path = f"{path}/info[{i}]"
            if i > 0:
                check_same_as_first(f, "cap-au", "CAP-AU", info, alert.infos[0], info_path)
            first_code = _check_event_code(f, info, info_path, first_code)
            language = info.language.strip().lower()
            if language in event_by_language and info.event != event_by_language[language]:
                f.error("cap-au-events-must-match", f"{info_path}/event",
                        f"CAP-AU requires the same <event> in every <info> of one language; "
                        f"{info.event!r} differs from {event_by_language[language]!r}",
                        "use one event name per language")
            event_by_language.setdefault(language, info.event)
            if alert.msg_type is MsgType.CANCEL and info.effective is not None:
                f.error("cap-au-effective-with-cancel", f"{info_path}/effective",
                        "CAP-AU forbids <effective> when msgType is Cancel",
                        "remove <effective>")
            _check_info(f, info, info_path)
        return f.items


def _check_event_code(f: Findings, info: Info, info_path: str,
                      first_code: str | None) -> str | None:
    """Check the AUeventLIST code of one info; return the alert's first such code."""
    authorised = [(j, code.value.strip()) for j, code in enumerate(info.event_codes)
                  if code.value_name.strip() in AU_EVENT_LIST_NAMES]
    if not authorised:
        f.error("cap-au-event-code-required", f"{info_path}/eventCode",
                "CAP-AU requires one <eventCode> from the authorised list AUeventLIST "
                "(valueName https://govshare.gov.au/xmlui/handle/10772/6495)",
                "add <eventCode><valueName>https://govshare.gov.au/xmlui/handle/10772/6495"
                "</valueName><value>...</value></eventCode>")
        return first_code
    for j, value in authorised:
        code_path = f"{info_path}/eventCode[{j}]"
        if first_code is None:
            first_code = value
        elif value != first_code:
            f.error("cap-au-one-event-code", code_path,
                    f"CAP-AU allows one AUeventLIST event code per alert; {value!r} differs "
                    f"from {first_code!r}",
                    "send each event as its own alert")
            continue
        events = AU_EVENT_LIST.get(value)
        if events is None:
            f.error("cap-au-unknown-event-code", code_path,
                    f"<eventCode> {value!r} is not in AUeventLIST 1.0",
                    "use a code from AUeventLIST 1.0, e.g. bushFire, flood, thunderstorm")
            continue
        names = [name for event in events for name in event.names]
        if (info.language.strip().lower().startswith("en")
                and _fold(info.event) not in {_fold(name) for name in names}):
            f.error("cap-au-event-mismatch", f"{info_path}/event",
                    f"<event> {info.event!r} does not match <eventCode> {value!r}; AUeventLIST "
                    f"expects {' or '.join(repr(n) for n in names)}",
                    f"write <event>{names[-1]}</event>, or use the event code of "
                    f"{info.event!r}")
        categories = {c for event in events for c in event.categories}
        if not categories & set(info.categories):
            f.warning("cap-au-category-mismatch", f"{info_path}/category",
                      f"AUeventLIST gives {value!r} the category "
                      f"{' or '.join(sorted(c.value for c in categories))}, which the <info> "
                      "does not have",
                      "add the list's category")
    return first_code


def _check_info(f: Findings, info: Info, info_path: str) -> None:
    if not info.areas:
        f.error("cap-au-area-required", f"{info_path}/area",
                "CAP-AU requires at least one <area> in every <info>",
                "add an <area>")
    for j, area in enumerate(info.areas):
        if not any(g.value_name.strip() in RECOGNISED_GEOCODES for g in area.geocodes):
            f.warning("cap-au-geocode-recommended", f"{info_path}/area[{j}]/geocode",
                      "CAP-AU recommends a <geocode> from a recognised scheme (G-NAF, "
                      "ISO 3166-2, Gazetteer or postcode)",
                      "add e.g. <geocode><valueName>http://www.iso.org/iso/country_codes.html"
                      "</valueName><value>AU-NSW</value></geocode>")
    check_recommended(f, "cap-au", "CAP-AU", info, info_path)
