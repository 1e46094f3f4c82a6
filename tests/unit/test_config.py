"""dispatcher.config: the TOML file, CAPCAST_* variables, secrets and every validation error."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tomllib
from pathlib import Path
from textwrap import dedent
from typing import Any

import platformdirs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cap.errors import CapcastError
from cap.model import Status
from cap.profiles import PROFILES
from dispatcher import config
from dispatcher.config import (
    BindMode,
    CbcDialect,
    CbcRestGateway,
    ConfigError,
    GatewayKind,
    GeocodePolicy,
    JurisdictionPolicy,
    Problem,
    Role,
    Secret,
    Settings,
    SmppBroadcastGateway,
    SmppSmsGateway,
    hash_token,
    load_settings,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "ops" / "capcast.example.toml"

#: The files the example names, relative to its folder.
EXAMPLE_FILES = {
    "targeting.geodata_dir": "geodata/",
    "authorities[1].jurisdiction": "jurisdictions/germany.geojson",
    "authorities[1].trust_store": "trust/bbk-signing-ca.pem",
    "operators[0].inventory": "cells/opa.parquet",
    "operators[0].exercise.cells_file": "cells/opa-exercise-cells.txt",
    "operators[0].test.cells_file": "cells/opa-exercise-cells.txt",
    "operators[1].inventory": "cells/opb.parquet",
}
#: The secrets the example names: token hashes, and passwords / header values.
EXAMPLE_TOKENS = ("dwd_ingest", "bbk_ingest", "bbk_manager", "opa_noc", "ops_admin")
EXAMPLE_PASSWORDS = ("opa_cbc_auth", "opa_smpp", "opb_smpp", "partner_feed_auth")

SMPP_PASSWORD = "pw-7f3a"  # a dummy value that must never show up in output


def example_env() -> dict[str, str]:
    env = {f"CAPCAST_SECRET_{name.upper()}": hash_token(f"token-{name}")
           for name in EXAMPLE_TOKENS}
    env.update({f"CAPCAST_SECRET_{name.upper()}": f"secret-{name}"
                for name in EXAMPLE_PASSWORDS})
    return env


def example_copy(folder: Path, *, with_files: bool = True) -> Path:
    target = folder / "capcast.toml"
    shutil.copy(EXAMPLE, target)
    if with_files:
        for name in EXAMPLE_FILES.values():
            path = folder / name
            if name.endswith("/"):
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("262-01-26877442\n262-01-4711-1  # a GSM cell\n"
                            if name.endswith(".txt") else "{}")
    return target


def write(folder: Path, text: str, name: str = "capcast.toml") -> Path:
    path = folder / name
    path.write_text(dedent(text), encoding="utf-8")
    return path


def problems_of(folder: Path, text: str, env: dict[str, str] | None = None,
                **kwargs: Any) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(folder, text), env=env or {}, **kwargs)
    return list(caught.value.problems)


def secrets_file(folder: Path, text: str, *, name: str = "secrets.toml",
                 mode: int = 0o600) -> Path:
    path = folder / name
    path.write_text(dedent(text), encoding="utf-8")
    path.chmod(mode)
    return path


OPERATOR = """
[[operators]]
name = "opa"
plmn = "262-01"

[[operators.gateways]]
name = "sms"
kind = "smpp-sms"
host = "smsc.example"
system_id = "capcast"
password_secret = "opa_smpp"
"""
OPERATOR_ENV = {"CAPCAST_SECRET_OPA_SMPP": SMPP_PASSWORD}

AUTHORITY = """
[[authorities]]
sender = "warn@example.org"
"""


# -- defaults -------------------------------------------------------------------------------


def test_no_file_gives_working_embedded_defaults(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, env={})
    assert settings.config_file is None and settings.secrets_file is None
    assert settings.database.embedded and settings.database.url is None
    assert settings.data_dir == platformdirs.user_data_path("capcast", appauthor=False)
    assert settings.postgres_dir == settings.data_dir / "postgres"
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 8080)
    assert settings.http.max_body_bytes == 1 << 20
    assert settings.http.base_url == "http://127.0.0.1:8080"
    assert settings.targeting.policy.min_overlap == 0.0
    assert settings.targeting.policy.geocodes is GeocodePolicy.UNION
    assert not (settings.authorities or settings.operators or settings.feeds or settings.tokens)
    assert settings == Settings(data_dir=settings.data_dir)


def test_an_empty_file_gives_the_same_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), env={})
    assert dataclasses.replace(settings, config_file=None) == load_settings(None, env={})


def test_capcast_config_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[http]\nport = 9000\n")
    assert load_settings(None, env={"CAPCAST_CONFIG": str(path)}).http.port == 9000
    # An explicit path wins over the variable.
    other = write(tmp_path, "[http]\nport = 9001\n", name="other.toml")
    assert load_settings(other, env={"CAPCAST_CONFIG": str(path)}).http.port == 9001


def test_settings_are_frozen() -> None:
    settings = load_settings(None, env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.http.port = 1  # type: ignore[misc]


# -- the example -----------------------------------------------------------------------------


def test_example_loads(tmp_path: Path) -> None:
    settings = load_settings(example_copy(tmp_path), env=example_env())
    assert settings.data_dir == Path("/var/lib/capcast")
    assert settings.database.embedded
    assert settings.http.base_url == "https://warn.example.org/capcast"
    assert settings.targeting.geodata_dir == tmp_path / "geodata"

    dwd = settings.authority("opendata@dwd.de")
    assert dwd is not None and dwd.profile == "oasis"
    assert dwd.statuses == (Status.ACTUAL, Status.EXERCISE, Status.TEST)
    assert dwd.jurisdiction is not None
    assert [str(code) for code in dwd.jurisdiction.geocodes] == ["NUTS:DE"]
    assert dwd.jurisdiction_policy is JurisdictionPolicy.CLIP
    assert dwd.channels is not None and dwd.channels.by_event_code["51"] == 4396
    bbk = settings.authorities[1]
    assert bbk.jurisdiction is not None
    assert bbk.jurisdiction.file == tmp_path / "jurisdictions" / "germany.geojson"
    assert bbk.signature_required and bbk.trust_store == tmp_path / "trust/bbk-signing-ca.pem"

    opa = settings.operator("OPA")
    assert opa is not None and opa.plmn == "262-01" and opa.languages == ("de", "en")
    assert opa.targeting.min_overlap == 0.1
    cbc, sms = opa.gateways
    assert isinstance(cbc, CbcRestGateway) and cbc.dialect is CbcDialect.CAPCAST
    assert cbc.authorization is not None
    assert cbc.authorization.value == "secret-opa_cbc_auth"
    assert isinstance(sms, SmppSmsGateway) and sms.links == 2 and sms.link_throughput == 50.0
    assert sms.password is not None and sms.password.value == "secret-opa_smpp"
    assert opa.exercise.gateways == ("cbc",) and opa.exercise.sent
    assert opa.exercise.cells == frozenset({"262-01-26877441", "262-01-26877442",
                                            "262-01-4711-1"})
    assert opa.handling(Status.TEST) is opa.test and opa.handling(Status.ACTUAL) is None
    opb = settings.operators[1]
    assert opb.targeting == settings.targeting.policy
    assert not opb.exercise.sent and opb.exercise.cells is None
    broadcast, disabled = opb.gateways
    assert isinstance(broadcast, SmppBroadcastGateway) and broadcast.bind is BindMode.TRANSMITTER
    assert not disabled.enabled and isinstance(disabled, SmppSmsGateway)
    assert disabled.password is None  # disabled: its secret need not exist

    assert [feed.authority for feed in settings.feeds] == ["lagezentrum@bbk.bund.de",
                                                            "opendata@dwd.de"]
    roles = {token.name: token.role for token in settings.tokens}
    assert roles == {"dwd_ingest": Role.AUTHORITY, "bbk_ingest": Role.AUTHORITY,
                     "bbk-duty-officer": Role.MANAGER, "opa-noc": Role.OPERATOR,
                     "ops": Role.ADMIN}
    found = settings.find_token("token-opa_noc")
    assert found is not None and found.operator == "opa"
    assert settings.find_token("token-nobody") is None


def test_example_without_its_files_names_each_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(example_copy(tmp_path, with_files=False), env=example_env())
    problems = caught.value.problems
    assert {p.key for p in problems} == set(EXAMPLE_FILES)
    for problem in problems:
        assert problem.source == str(tmp_path / "capcast.toml")
        assert problem.line is not None
        assert EXAMPLE.read_text().splitlines()[problem.line - 1].startswith(
            problem.key.rsplit(".", 1)[-1])
        assert "no such" in problem.message


def test_example_documents_every_key(tmp_path: Path) -> None:
    _, ctx = config._load(example_copy(tmp_path), env=example_env(), secrets_path=None,
                          overrides=None)
    assert not ctx.problems

    def keys(value: Any, prefix: str) -> set[str]:
        out: set[str] = set()
        items = value.items() if isinstance(value, dict) else []
        for key, item in items:
            path = f"{prefix}.{key}" if prefix else key
            out.add(path)
            if isinstance(item, dict):
                out |= keys(item, path)
            elif isinstance(item, list) and item and all(isinstance(i, dict) for i in item):
                for element in item:
                    out |= keys(element, path + "[]")
        return out

    present = keys(tomllib.loads(EXAMPLE.read_text()), "")
    missing = ctx.asked - present
    # database.url is shown in a comment: setting it would turn the embedded database off.
    assert missing == {"database.url"}
    commented = re.search(r"^# (url = \"postgresql://.*)$", EXAMPLE.read_text(), re.MULTILINE)
    assert commented is not None
    # Uncommented, the documented URL is valid (it holds no password).
    enabled = EXAMPLE.read_text().replace(commented.group(0), commented.group(1))
    (tmp_path / "capcast.toml").write_text(enabled)
    url = load_settings(tmp_path / "capcast.toml", env=example_env()).database.url
    assert url is not None and url.value == commented.group(1).split('"')[1]
    text = EXAMPLE.read_text().splitlines()
    for number, line in enumerate(text):
        if re.match(r"[a-z_]+ = ", line):
            key = line.split(" = ")[0]
            context = text[number - 1]
            # Each key is preceded by a comment line, except repeats of keys explained above.
            assert context.startswith("#") or any(
                other.startswith(f"{key} = ") and text[i - 1].startswith("#")
                for i, other in enumerate(text[:number])), f"line {number + 1}: {line}"


def test_key_sets_match_gateway_reader() -> None:
    """The hints for keys of other gateway kinds list exactly what each kind reads."""
    kinds = {GatewayKind.CBC_REST: CbcRestGateway, GatewayKind.SMPP_BROADCAST:
             SmppBroadcastGateway, GatewayKind.SMPP_SMS: SmppSmsGateway}
    renamed = {"password": "password_secret", "authorization": "authorization_secret"}
    for kind, cls in kinds.items():
        fields = {renamed.get(f.name, f.name) for f in dataclasses.fields(cls)}
        assert fields - {"name", "enabled"} == set(config._GATEWAY_KEYS[kind])


# -- validation: one problem, naming its key -------------------------------------------------

CASES: list[tuple[str, str, str, str]] = [
    # (id, toml, key, a fragment of the message)
    ("unknown-section", "[htp]\nport = 1\n", "htp", "did you mean 'http'"),
    ("unknown-key", "[http]\nprot = 8080\n", "http.prot", "did you mean 'port'"),
    ("string-for-int", "[http]\nport = \"8080\"\n", "http.port",
     "must be an integer, not a string ('8080')"),
    ("bool-for-int", "[http]\nport = true\n", "http.port", "must be an integer, not a boolean"),
    ("port-range", "[http]\nport = 70000\n", "http.port", "between 0 and 65535, not 70000"),
    ("body-range", "[http]\nmax_body_bytes = 10\n", "http.max_body_bytes", "between 1024"),
    ("public-url", "[http]\npublic_url = \"ftp://x\"\n", "http.public_url", "http:// or https://"),
    ("section-type", "http = 5\n", "http", "must be a table"),
    ("data-dir-type", "data_dir = 5\n", "data_dir", "must be a path"),
    ("pool", "[database]\npool_min = 5\npool_max = 2\n", "database.pool_min",
     "must not exceed pool_max (2)"),
    ("db-scheme", "[database]\nurl = \"mysql://db/x\"\n", "database.url", "postgresql://"),
    ("db-password", "[database]\nurl = \"postgresql://capcast:hunter2@db/capcast\"\n",
     "database.url", "CAPCAST_DATABASE_URL"),
    ("db-password-query", "[database]\nurl = \"postgresql://db/c?password=hunter2\"\n",
     "database.url", "secrets file"),
    ("timeout-nan", "[database]\nstatement_timeout = nan\n", "database.statement_timeout",
     "finite"),
    ("timeout-zero", "[database]\nconnect_timeout = 0\n", "database.connect_timeout",
     "more than 0"),
    ("overlap", "[targeting]\nmin_overlap = 1.5\n", "targeting.min_overlap", "between 0.0 and 1.0"),
    ("geocodes", "[targeting]\ngeocodes = \"unoin\"\n", "targeting.geocodes",
     "did you mean 'union'"),
    ("geodata", "[targeting]\ngeodata_dir = \"nowhere\"\n", "targeting.geodata_dir",
     "no such folder"),
    ("roles", "[roles]\nadmin = [\"x\"]\n", "roles", "roles are fixed"),
    ("sender-missing", "[[authorities]]\nname = \"x\"\n", "authorities[0].sender", "required"),
    ("sender-space", "[[authorities]]\nsender = \"a b\"\n", "authorities[0].sender",
     "is not a CAP sender"),
    ("profile", AUTHORITY + "profile = \"ipaw\"\n", "authorities[0].profile",
     "did you mean 'ipaws'"),
    ("status", AUTHORITY + "statuses = [\"Actul\"]\n", "authorities[0].statuses[0]",
     "not a CAP status"),
    ("status-empty", AUTHORITY + "statuses = []\n", "authorities[0].statuses", "at least one"),
    ("geocode", AUTHORITY + "jurisdiction = [\"SAME006037\"]\n", "authorities[0].jurisdiction[0]",
     "VALUENAME:value"),
    ("jurisdiction-type", AUTHORITY + "jurisdiction = 5\n", "authorities[0].jurisdiction",
     "GeoJSON file or a non-empty array"),
    ("jurisdiction-file", AUTHORITY + "jurisdiction = \"none.geojson\"\n",
     "authorities[0].jurisdiction", "no such file"),
    ("policy", AUTHORITY + "jurisdiction_policy = \"cut\"\n", "authorities[0].jurisdiction_policy",
     "not one of 'reject', 'clip'"),
    ("signature", AUTHORITY + "signature_required = true\n", "authorities[0].trust_store",
     "required when signature_required"),
    ("trust-store", AUTHORITY + "trust_store = \"ca.pem\"\n", "authorities[0].trust_store",
     "no such file or folder"),
    ("token-secret-missing", AUTHORITY + "tokens = [\"wx\"]\n", "authorities[0].tokens[0]",
     "CAPCAST_SECRET_WX"),
    ("public-test-channel", AUTHORITY + "[authorities.channels]\ntest_channels = [4370]\n",
     "authorities[0].channels", "public ETWS/CMAS channel"),
    ("channel-range", AUTHORITY + "[authorities.channels]\ndefault = 70000\n",
     "authorities[0].channels.default", "between 0 and 65535"),
    ("channel-key", AUTHORITY + "[authorities.channels]\nby_code = {}\n",
     "authorities[0].channels.by_code", "did you mean 'by_event_code'"),
    ("inline-token", AUTHORITY + "token = \"abc\"\n", "authorities[0].token",
     "tokens = [\"<name>\"]"),
    ("operator-name", "[[operators]]\nname = \"op a\"\nplmn = \"262-01\"\n", "operators[0].name",
     "is not a name"),
    ("plmn", "[[operators]]\nname = \"opa\"\nplmn = \"26201\"\n", "operators[0].plmn", "MCC-MNC"),
    ("plmn-missing", "[[operators]]\nname = \"opa\"\n", "operators[0].plmn", "required"),
    ("language", OPERATOR + "[[operators]]\nname = \"b\"\nplmn = \"262-02\"\n"
     "languages = [\"German\"]\n", "operators[1].languages[0]", "language code"),
    ("language-twice", "[[operators]]\nname = \"b\"\nplmn = \"262-02\"\n"
     "languages = [\"de\", \"de\"]\n", "operators[0].languages[1]", "listed twice"),
    ("inventory", "[[operators]]\nname = \"b\"\nplmn = \"262-02\"\ninventory = \"x.parquet\"\n",
     "operators[0].inventory", "no such file"),
    ("operator-overlap", "[[operators]]\nname = \"b\"\nplmn = \"262-02\"\n"
     "[operators.targeting]\nmin_overlap = -0.1\n", "operators[0].targeting.min_overlap",
     "between 0.0 and 1.0"),
    ("operators-type", "[operators]\nname = \"b\"\n", "operators",
     "array of tables ([[operators]])"),
    ("window", OPERATOR + "window = 0\n", "operators[0].gateways[0].window",
     "between 1 and 10000, not 0"),
    ("throughput", OPERATOR + "throughput = 0\n", "operators[0].gateways[0].throughput",
     "more than 0.0"),
    ("bind", OPERATOR + "bind = \"receiver\"\n", "operators[0].gateways[0].bind",
     "not one of 'transceiver', 'transmitter'"),
    ("system-id", OPERATOR + "system_type = \"a-very-long-type\"\n",
     "operators[0].gateways[0].system_type", "at most 12 characters"),
    ("ton", OPERATOR + "source_ton = 9\n", "operators[0].gateways[0].source_ton",
     "between 0 and 6"),
    ("segments", OPERATOR + "max_segments = 0\n", "operators[0].gateways[0].max_segments",
     "between 1 and 255"),
    ("other-kind-key", OPERATOR + "dialect = \"capcast\"\n", "operators[0].gateways[0].dialect",
     "a key of cbc-rest gateways, and this one is smpp-sms"),
    ("inline-password", OPERATOR + "password = \"hunter2\"\n", "operators[0].gateways[0].password",
     "password_secret = \"<name>\""),
    ("gateway-unknown", OPERATOR + "windw = 3\n", "operators[0].gateways[0].windw",
     "did you mean 'window'"),
    ("gateway-authority", OPERATOR + "authority = \"x\"\n", "operators[0].gateways[0].authority",
     "unknown key"),
    ("gateway-auth", OPERATOR + "authorization = \"Bearer x\"\n",
     "operators[0].gateways[0].authorization", "secrets do not belong"),
    ("kind-missing", "[[operators]]\nname = \"b\"\nplmn = \"262-02\"\n[[operators.gateways]]\n"
     "host = \"x\"\n", "operators[0].gateways[0].kind", "required: one of 'cbc-rest'"),
    ("kind-unknown", "[[operators]]\nname = \"b\"\nplmn = \"262-02\"\n[[operators.gateways]]\n"
     "kind = \"smpp\"\nhost = \"x\"\n", "operators[0].gateways[0].kind", "not one of"),
    ("password-secret-missing", OPERATOR.replace('password_secret = "opa_smpp"\n', ""),
     "operators[0].gateways[0].password_secret", "is required"),
    ("password-secret-unset", OPERATOR.replace("opa_smpp", "opa_smp"),
     "operators[0].gateways[0].password_secret", "did you mean 'opa_smpp'"),
    ("password-in-secret-key", OPERATOR.replace('"opa_smpp"', '"Hunter2!"'),
     "operators[0].gateways[0].password_secret", "it names a secret"),
    ("cbc-url", "[[operators]]\nname = \"b\"\nplmn = \"262-02\"\n[[operators.gateways]]\n"
     "kind = \"cbc-rest\"\nurl = \"http://user:pw@cbc:1\"\n", "operators[0].gateways[0].url",
     "authorization_secret"),
    ("cbc-url-missing", "[[operators]]\nname = \"b\"\nplmn = \"262-02\"\n[[operators.gateways]]\n"
     "kind = \"cbc-rest\"\n", "operators[0].gateways[0].url", "required"),
    ("repetition", "[[operators]]\nname = \"b\"\nplmn = \"262-02\"\n[[operators.gateways]]\n"
     "kind = \"cbc-rest\"\nurl = \"http://cbc:1\"\nrepetition = 8000\n",
     "operators[0].gateways[0].repetition", "at most 7711"),
    ("dialect", "[[operators]]\nname = \"b\"\nplmn = \"262-02\"\n[[operators.gateways]]\n"
     "kind = \"cbc-rest\"\nurl = \"http://cbc:1\"\ndialect = \"osmocbc\"\n",
     "operators[0].gateways[0].dialect", "did you mean 'osmo-cbc'"),
    ("cbc-auth-unset", "[[operators]]\nname = \"b\"\nplmn = \"262-02\"\n[[operators.gateways]]\n"
     "kind = \"cbc-rest\"\nurl = \"http://cbc:1\"\nauthorization_secret = \"b_auth\"\n",
     "operators[0].gateways[0].authorization_secret", "CAPCAST_SECRET_B_AUTH"),
    ("exercise-gateway", OPERATOR + "[operators.exercise]\ngateways = [\"smss\"]\n",
     "operators[0].exercise.gateways[0]", "no gateway 'smss' (did you mean 'sms'?)"),
    ("exercise-channel", OPERATOR + "[operators.exercise]\nchannels = [4370]\n",
     "operators[0].exercise.channels[0]", "public warning channel"),
    ("test-cells", OPERATOR + "[operators.test]\ncells = [\"262-01\"]\n",
     "operators[0].test.cells[0]", "not a cell id"),
    ("test-cells-file", OPERATOR + "[operators.test]\ncells_file = \"cells.txt\"\n",
     "operators[0].test.cells_file", "no such file"),
    ("exercise-unknown", OPERATOR + "[operators.exercise]\ncell = []\n",
     "operators[0].exercise.cell", "did you mean 'cells'"),
    ("feed-authority", AUTHORITY + "[[feeds]]\nurl = \"https://f.example/x\"\n"
     "authority = \"warn@example.com\"\n", "feeds[0].authority", "did you mean 'warn@example.org'"),
    ("feed-url", AUTHORITY + "[[feeds]]\nurl = \"file:///x\"\nauthority = \"warn@example.org\"\n",
     "feeds[0].url", "http:// or https://"),
    ("feed-interval", AUTHORITY + "[[feeds]]\nurl = \"https://f/x\"\n"
     "authority = \"warn@example.org\"\ninterval = 0\n", "feeds[0].interval", "between 1"),
    ("feed-conditional", AUTHORITY + "[[feeds]]\nurl = \"https://f/x\"\n"
     "authority = \"warn@example.org\"\nconditional = \"yes\"\n", "feeds[0].conditional",
     "true or false"),
    ("token-role", "[[tokens]]\nrole = \"root\"\nsecret = \"adm\"\n", "tokens[0].role",
     "not one of 'authority', 'manager', 'operator', 'admin'"),
    ("token-role-missing", "[[tokens]]\nsecret = \"adm\"\n", "tokens[0].role", "required"),
    ("token-authority-missing", "[[tokens]]\nrole = \"authority\"\nsecret = \"adm\"\n",
     "tokens[0].authority", "required for an authority token"),
    ("token-operator-missing", "[[tokens]]\nrole = \"operator\"\nsecret = \"adm\"\n",
     "tokens[0].operator", "required for an operator token"),
    ("token-operator-unknown", "[[tokens]]\nrole = \"operator\"\nsecret = \"adm\"\n"
     "operator = \"opx\"\n", "tokens[0].operator", "no operator is called 'opx'"),
    ("token-admin-bound", AUTHORITY + "[[tokens]]\nrole = \"admin\"\nsecret = \"adm\"\n"
     "authority = \"warn@example.org\"\n", "tokens[0].authority", "not bound to an authority"),
    ("token-manager-operator", OPERATOR + "[[tokens]]\nrole = \"manager\"\nsecret = \"adm\"\n"
     "operator = \"opa\"\n", "tokens[0].operator", "not bound to an operator"),
    ("token-inline-hash", "[[tokens]]\nrole = \"admin\"\nsecret = \"adm\"\nsha256 = \"00\"\n",
     "tokens[0].sha256", "secret = \"<name>\""),
    ("token-secret-unset", "[[tokens]]\nrole = \"admin\"\nsecret = \"nope\"\n",
     "tokens[0].secret", "CAPCAST_SECRET_NOPE"),
]


@pytest.mark.parametrize(("text", "key", "fragment"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_each_problem_names_its_key(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    env = {**OPERATOR_ENV, "CAPCAST_SECRET_ADM": hash_token("adm")}
    problems = problems_of(tmp_path, text, env)
    assert [p.key for p in problems] == [key], problems
    problem = problems[0]
    assert fragment in problem.message
    assert problem.source == str(tmp_path / "capcast.toml")
    assert problem.line is not None
    assert str(problem).startswith(f"{tmp_path / 'capcast.toml'}:{problem.line}: {key}: ")
    assert "hunter2" not in str(problem) and SMPP_PASSWORD not in str(problem)


def test_case_ids_are_unique() -> None:
    assert len({case[0] for case in CASES}) == len(CASES)


def test_line_numbers_point_at_the_key(tmp_path: Path) -> None:
    text = OPERATOR + "window = 0\n" + OPERATOR.replace('"opa"', '"opb"') + "links = 0\n"
    problems = problems_of(tmp_path, text, OPERATOR_ENV)
    lines = (dedent(text)).splitlines()
    assert [p.key for p in problems] == ["operators[0].gateways[0].window",
                                          "operators[1].gateways[0].links"]
    assert [lines[p.line - 1] for p in problems if p.line] == ["window = 0", "links = 0"]


def test_every_problem_is_reported_not_only_the_first(tmp_path: Path) -> None:
    text = """
    [http]
    port = -1
    host = ""

    [database]
    pool_max = 0

    [[operators]]
    name = "opa"
    plmn = "1-1"
    """
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), env={"CAPCAST_HTTP__PROT": "1"})
    error = caught.value
    assert {p.key for p in error.problems} == {"http.port", "http.host", "database.pool_max",
                                               "operators[0].plmn", ""}
    assert isinstance(error, CapcastError)
    assert str(error).startswith("5 configuration problems:\n  ")
    assert all(str(p) in str(error) for p in error.problems)


def test_duplicates(tmp_path: Path) -> None:
    text = (AUTHORITY + AUTHORITY + OPERATOR + OPERATOR.replace('"opa"', '"OPA"')
            + "[[operators.gateways]]\nkind = \"smpp-sms\"\nname = \"sms\"\nhost = \"h\"\n"
              "system_id = \"s\"\npassword_secret = \"opa_smpp\"\n"
            + "[[feeds]]\nurl = \"https://f/x\"\nauthority = \"warn@example.org\"\n" * 2
            + "[[tokens]]\nrole = \"admin\"\nsecret = \"adm\"\n"
            + "[[tokens]]\nname = \"other\"\nrole = \"admin\"\nsecret = \"adm2\"\n"
            + "[[tokens]]\nname = \"other\"\nrole = \"admin\"\nsecret = \"adm3\"\n")
    env = {**OPERATOR_ENV, "CAPCAST_SECRET_ADM": hash_token("a"),
           "CAPCAST_SECRET_ADM2": hash_token("a"), "CAPCAST_SECRET_ADM3": hash_token("c")}
    problems = {p.key: p.message for p in problems_of(tmp_path, text, env)}
    assert problems.keys() == {"authorities[1].sender", "operators[1].name",
                               "operators[1].gateways[1].name", "feeds[1].url",
                               "tokens[1].name", "tokens[2].name"}
    assert "same sender" in problems["authorities[1].sender"]
    assert "ignoring case" in problems["operators[1].name"]
    assert "give each gateway its own name" in problems["operators[1].gateways[1].name"]
    assert "same token hash as tokens[0].name" in problems["tokens[1].name"]
    assert "another token (tokens[1].name) is called 'other'" in problems["tokens[2].name"]


def test_unnamed_gateways_of_one_kind_collide(tmp_path: Path) -> None:
    gateway = ("[[operators.gateways]]\nkind = \"smpp-sms\"\nhost = \"h\"\nsystem_id = \"s\"\n"
               "password_secret = \"opa_smpp\"\n")
    text = "[[operators]]\nname = \"opa\"\nplmn = \"262-01\"\n" + gateway * 2
    problems = problems_of(tmp_path, text, OPERATOR_ENV)
    assert [p.key for p in problems] == ["operators[0].gateways[1].name"]
    assert "'smpp-sms'" in problems[0].message


def test_token_hash_must_be_a_sha256_and_is_never_echoed(tmp_path: Path) -> None:
    value = "plain-token-value"
    problems = problems_of(tmp_path, AUTHORITY + "tokens = [\"wx\"]\n",
                           {"CAPCAST_SECRET_WX": value})
    assert [p.key for p in problems] == ["authorities[0].tokens[0]"]
    assert "SHA-256 hex digest" in problems[0].message
    assert "environment variable CAPCAST_SECRET_WX" in problems[0].message
    assert value not in str(problems[0])
    # With the "sha256:" prefix and upper-case hex it is accepted.
    digest = "sha256:" + hash_token("t").upper()
    settings = load_settings(write(tmp_path, AUTHORITY + "tokens = [\"wx\"]\n"),
                             env={"CAPCAST_SECRET_WX": digest})
    assert settings.find_token("t") is settings.tokens[0]
    assert settings.tokens[0].matches("t") and not settings.tokens[0].matches("u")


def test_a_cells_file_line_with_a_bad_id_is_named(tmp_path: Path) -> None:
    (tmp_path / "cells.txt").write_text("262-01-1-2\n\n# note\nnot-a-cell\n")
    problems = problems_of(tmp_path, OPERATOR + "[operators.test]\ncells_file = \"cells.txt\"\n",
                           OPERATOR_ENV)
    assert [p.key for p in problems] == ["operators[0].test.cells_file"]
    assert f"{tmp_path / 'cells.txt'}:4: 'not-a-cell'" in problems[0].message


def test_a_disabled_gateway_needs_no_secret_but_a_name_for_it(tmp_path: Path) -> None:
    text = OPERATOR.replace("opa_smpp", "absent") + "enabled = false\n"
    settings = load_settings(write(tmp_path, text), env={})
    gateway = settings.operators[0].gateways[0]
    assert not gateway.enabled and isinstance(gateway, SmppSmsGateway) and gateway.password is None
    text = OPERATOR.replace('password_secret = "opa_smpp"\n', "") + "enabled = false\n"
    assert [p.key for p in problems_of(tmp_path, text)] == [
        "operators[0].gateways[0].password_secret"]


def test_syntax_error_gives_the_line(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "[http]\nport = = 1\n")
    assert len(problems) == 1 and problems[0].line == 2 and "not valid TOML" in problems[0].message


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "absent.toml", env={})
    assert "no such configuration file" in str(caught.value)


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "etc" / "geodata").mkdir(parents=True)
    path = write(tmp_path / "etc", "data_dir = \"data\"\n[targeting]\ngeodata_dir = \"geodata\"\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings(path, env={})
    assert settings.data_dir == tmp_path / "etc" / "data"
    assert settings.targeting.geodata_dir == tmp_path / "etc" / "geodata"


def test_data_dir_must_not_be_a_file(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("")
    problems = problems_of(tmp_path, "data_dir = \"data\"\n")
    assert [p.key for p in problems] == ["data_dir"] and "not a folder" in problems[0].message


def test_profiles_are_those_of_cap() -> None:
    assert set(PROFILES) == {"oasis", "ipaws", "cap-cp", "cap-au"}


def test_every_profile_is_accepted(tmp_path: Path) -> None:
    for name in PROFILES:
        settings = load_settings(write(tmp_path, AUTHORITY + f"profile = \"{name.upper()}\"\n"),
                                 env={})
        assert settings.authorities[0].profile == name


# -- environment ---------------------------------------------------------------------------


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "[http]\nport = 9000\nhost = \"0.0.0.0\"\n"
                           "[targeting]\nmin_overlap = 0.2\n")
    env = {"CAPCAST_HTTP_PORT": "9100", "CAPCAST_HTTP__MAX_BODY_BYTES": "2048",
           "CAPCAST_TARGETING__MIN_OVERLAP": "0.5", "CAPCAST_TARGETING__GEOCODES": "fallback",
           "CAPCAST_DATA_DIR": "state", "CAPCAST_DATABASE__POOL_MAX": "3",
           "CAPCAST_TEST_DATABASE_URL": "not configuration", "CAPCAST_CAP_CORPUS": "/x"}
    settings = load_settings(path, env=env)
    assert settings.http.port == 9100 and settings.http.host == "0.0.0.0"
    assert settings.http.max_body_bytes == 2048 and settings.database.pool_max == 3
    assert settings.targeting.policy.min_overlap == 0.5
    assert settings.targeting.policy.geocodes is GeocodePolicy.FALLBACK
    # Relative paths from the environment are relative to the working folder.
    assert settings.data_dir == tmp_path / "state"


def test_every_settable_key_has_a_generic_variable(tmp_path: Path) -> None:
    values = {int: "7", float: "0.5", str: "x"}
    for key, kind in config._SCALARS.items():
        if "." not in key or key in ("database.url", "http.public_url", "targeting.geocodes",
                                     "targeting.geodata_dir"):
            continue
        var = "CAPCAST_" + key.replace(".", "__").upper()
        value = values[kind] if key != "http.max_body_bytes" else "4096"
        settings = load_settings(None, env={var: value})
        section, name = key.split(".")
        got = getattr(getattr(settings, section), name)
        assert got == kind(value), key


def test_database_url_with_password_is_fine_from_the_environment(tmp_path: Path) -> None:
    url = "postgresql://capcast:hunter2@db.example:5432/capcast"
    path = write(tmp_path, "[database]\npool_max = 4\n")
    settings = load_settings(path, env={"CAPCAST_DATABASE_URL": url})
    assert not settings.database.embedded
    assert settings.database.url is not None and settings.database.url.value == url
    assert settings.database.url.source == "environment variable CAPCAST_DATABASE_URL"
    assert settings.database.display_url == "postgresql://capcast:***@db.example:5432/capcast"
    shown = json.dumps(settings.redacted()) + repr(settings) + str(settings)
    assert "hunter2" not in shown
    assert settings.redacted()["database"]["url"] == settings.database.display_url


def test_a_password_in_the_file_is_refused_even_when_overridden(tmp_path: Path) -> None:
    text = "[database]\nurl = \"postgresql://u:hunter2@db/c\"\n"
    problems = problems_of(tmp_path, text, {"CAPCAST_DATABASE_URL": "postgresql://db/c"})
    assert [p.key for p in problems] == ["database.url"]
    assert problems[0].line == 2 and "hunter2" not in str(problems[0])


def test_a_database_url_without_password_may_stay_in_the_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "[database]\nurl = \"postgresql://u@db/c\"\n"),
                             env={})
    assert settings.database.display_url == "postgresql://u@db/c"


def test_environment_problems_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, env={"CAPCAST_HTTP_PORT": "eighty", "CAPCAST_HTTP__PROT": "1",
                                 "CAPCAST_TARGETING__MIN_OVERLAP": "2",
                                 "CAPCAST_DATABASE__STATEMENT_TIMEOUT": "inf"})
    problems = {p.source: p for p in caught.value.problems}
    assert problems.keys() == {f"environment variable {var}" for var in (
        "CAPCAST_HTTP_PORT", "CAPCAST_HTTP__PROT", "CAPCAST_TARGETING__MIN_OVERLAP",
        "CAPCAST_DATABASE__STATEMENT_TIMEOUT")}
    port = problems["environment variable CAPCAST_HTTP_PORT"]
    assert port.key == "http.port" and "must be an integer, not 'eighty'" in port.message
    assert "CAPCAST_HTTP__PORT" in problems["environment variable CAPCAST_HTTP__PROT"].message
    overlap = problems["environment variable CAPCAST_TARGETING__MIN_OVERLAP"]
    assert overlap.key == "targeting.min_overlap" and overlap.line is None
    assert str(overlap) == ("environment variable CAPCAST_TARGETING__MIN_OVERLAP: "
                            "targeting.min_overlap: must be between 0.0 and 1.0, not 2.0")


def test_alias_and_generic_variable_must_agree(tmp_path: Path) -> None:
    assert load_settings(None, env={"CAPCAST_HTTP_PORT": "1", "CAPCAST_HTTP__PORT": "1"}
                         ).http.port == 1
    with pytest.raises(ConfigError, match="conflicts with CAPCAST_HTTP_PORT"):
        load_settings(None, env={"CAPCAST_HTTP_PORT": "1", "CAPCAST_HTTP__PORT": "2"})


def test_overrides_win_over_the_environment(tmp_path: Path) -> None:
    settings = load_settings(None, env={"CAPCAST_HTTP_PORT": "1"},
                             overrides={"http.port": "0", "data_dir": tmp_path, "http.host": None})
    assert settings.http.port == 0 and settings.data_dir == tmp_path
    assert settings.http.host == "127.0.0.1"
    with pytest.raises(ConfigError) as caught:
        load_settings(None, env={}, overrides={"http.port": "x"})
    assert caught.value.problems[0].source == "override of http.port"
    with pytest.raises(ValueError, match="cannot override"):
        load_settings(None, env={}, overrides={"operators": "x"})


# -- secrets ---------------------------------------------------------------------------------


def test_secrets_file_toml(tmp_path: Path) -> None:
    secrets = secrets_file(tmp_path, f"""
        database_url = "postgresql://capcast:hunter2@db/capcast"

        [secrets]
        opa_smpp = "{SMPP_PASSWORD}"
    """)
    settings = load_settings(write(tmp_path, OPERATOR), env={}, secrets_path=secrets)
    assert settings.secrets_file == secrets
    gateway = settings.operators[0].gateways[0]
    assert isinstance(gateway, SmppSmsGateway) and gateway.password is not None
    assert gateway.password.value == SMPP_PASSWORD
    assert gateway.password.source == f"{secrets} (opa_smpp)"
    assert settings.database.url is not None
    assert settings.database.url.value == "postgresql://capcast:hunter2@db/capcast"
    shown = json.dumps(settings.redacted()) + repr(settings)
    assert SMPP_PASSWORD not in shown and "hunter2" not in shown
    assert str(gateway.password) == "***"


def test_secrets_file_json_named_by_the_environment(tmp_path: Path) -> None:
    secrets = secrets_file(tmp_path, json.dumps({"secrets": {"opa_smpp": SMPP_PASSWORD}}),
                           name="secrets.json")
    settings = load_settings(write(tmp_path, OPERATOR),
                             env={"CAPCAST_SECRETS_FILE": str(secrets)})
    gateway = settings.operators[0].gateways[0]
    assert isinstance(gateway, SmppSmsGateway) and gateway.password is not None
    assert gateway.password.value == SMPP_PASSWORD


def test_environment_secret_wins_over_the_file(tmp_path: Path) -> None:
    secrets = secrets_file(tmp_path, "[secrets]\nopa_smpp = \"from-file\"\n")
    settings = load_settings(write(tmp_path, OPERATOR),
                             env={"CAPCAST_SECRET_OPA_SMPP": "from-env"}, secrets_path=secrets)
    gateway = settings.operators[0].gateways[0]
    assert isinstance(gateway, SmppSmsGateway) and gateway.password is not None
    assert gateway.password.value == "from-env"
    url = "postgresql://a:b@c/d"
    secrets = secrets_file(tmp_path, "database_url = \"postgresql://x:y@z/w\"\n", name="s2.toml")
    settings = load_settings(None, env={"CAPCAST_DATABASE_URL": url}, secrets_path=secrets)
    assert settings.database.url is not None and settings.database.url.value == url


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_secrets_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    secrets = secrets_file(tmp_path, f"[secrets]\nopa_smpp = \"{SMPP_PASSWORD}\"\n", mode=mode)
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, OPERATOR), env={}, secrets_path=secrets)
    messages = [str(p) for p in caught.value.problems]
    assert any(f"mode {mode:04o}" in m and f"chmod 600 {secrets}" in m
               and "secrets file refused" in m for m in messages), messages
    # The secret was not used: the gateway's secret is reported missing too.
    assert any("password_secret" in m for m in messages)
    assert not any(SMPP_PASSWORD in m for m in messages)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="chown needs root")
def test_secrets_file_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    secrets = secrets_file(tmp_path, "[secrets]\n")
    os.chown(secrets, 4242, -1)
    with pytest.raises(ConfigError, match="owned by uid 4242"):
        load_settings(None, env={}, secrets_path=secrets)


def test_secrets_file_inside_the_source_tree_is_refused(tmp_path: Path) -> None:
    secrets = secrets_file(tmp_path, "[secrets]\n")
    reasons = config._check_secrets_file(secrets, tmp_path)
    assert len(reasons) == 1 and "inside the capcast source tree" in reasons[0]
    assert config._check_secrets_file(secrets, tmp_path / "elsewhere") == []
    if config._source_checkout() is not None:
        assert config._source_checkout() == REPO


def test_secrets_file_problems(tmp_path: Path) -> None:
    secrets = secrets_file(tmp_path, f"""
        database_url = 5
        passwords = {{ a = "b" }}

        [secrets]
        Bad-Name = "x"
        opa_smpp = 12
        ok = "{SMPP_PASSWORD}"
    """)
    with pytest.raises(ConfigError) as caught:
        load_settings(None, env={}, secrets_path=secrets)
    problems = {p.key: p for p in caught.value.problems}
    assert problems.keys() == {"database_url", "passwords", "secrets.Bad-Name",
                               "secrets.opa_smpp"}
    assert all(p.source == str(secrets) and p.line is not None for p in problems.values())
    assert "must be a string, not an integer" in problems["secrets.opa_smpp"].message
    assert "12" not in problems["secrets.opa_smpp"].message
    assert "holds database_url and a [secrets] table" in problems["passwords"].message
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(None, env={}, secrets_path=tmp_path / "absent.toml")
    bad = secrets_file(tmp_path, "[secrets\n", name="bad.toml")
    with pytest.raises(ConfigError, match="cannot read secrets"):
        load_settings(None, env={}, secrets_path=bad)


# -- the settings object --------------------------------------------------------------------


def test_lookups_and_redaction(tmp_path: Path) -> None:
    settings = load_settings(example_copy(tmp_path), env=example_env())
    assert settings.authority("nobody@example.org") is None
    assert settings.operator("opc") is None
    opa = settings.operator("opa")
    assert opa is not None and opa.gateway("lbsms") is opa.gateways[1] and opa.gateway("x") is None
    plain = settings.redacted()
    text = json.dumps(plain)  # JSON-ready
    for value in example_env().values():
        assert value not in text and value not in repr(settings)
    gateway = plain["operators"][0]["gateways"][1]
    assert gateway["kind"] == "smpp-sms" and gateway["password"] == "***"
    assert plain["tokens"][0]["sha256"] == "***" and plain["tokens"][0]["secret"] == "dwd_ingest"
    assert plain["authorities"][0]["statuses"] == ["Actual", "Exercise", "Test"]
    assert plain["targeting"]["geocodes"] == "union"


def test_secret_repr_hides_the_value() -> None:
    secret = Secret(value="s3cret", source="environment variable X")
    assert "s3cret" not in repr(secret) and str(secret) == "***"
    assert "environment variable X" in repr(secret)


def test_enums_match_the_libraries() -> None:
    from gateways.cbc.ecbe import Dialect
    from gateways.smpp.client import BindMode as LinkBindMode
    from geo.areas import GeocodeUse

    assert {d.value for d in CbcDialect} == {d.value for d in Dialect}
    assert {b.value for b in BindMode} <= {b.value for b in LinkBindMode}
    assert {g.value for g in GeocodePolicy} == {g.value for g in GeocodeUse}


# -- robustness: any table shape gives problems, never a crash --------------------------------


def _example_keys() -> list[str]:
    _, ctx = config._load(None, env={}, secrets_path=None, overrides=None)
    return sorted(ctx.asked)


_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000),
                  st.floats(allow_nan=True), st.text(max_size=8),
                  st.sampled_from(["cbc-rest", "smpp-sms", "smpp-broadcast", "admin", "operator",
                                   "262-01", "opa", "warn@example.org", "union", "x.toml"]),
                  st.lists(st.text(max_size=5), max_size=3))


def _tables() -> st.SearchStrategy[dict[str, Any]]:
    gateway = st.dictionaries(st.sampled_from(["kind", "name", "host", "system_id", "url",
                                               "password_secret", "window", "enabled", "bogus"]),
                              _LEAF, max_size=6)
    operator = st.fixed_dictionaries(
        {}, optional={"name": _LEAF, "plmn": _LEAF, "languages": _LEAF, "gateways":
                      st.lists(gateway, max_size=2), "exercise": st.dictionaries(
                          st.sampled_from(["gateways", "cells", "channels"]), _LEAF),
                      "targeting": _LEAF})
    authority = st.dictionaries(st.sampled_from(["sender", "profile", "statuses", "jurisdiction",
                                                 "tokens", "channels", "signature_required"]),
                                _LEAF, max_size=5)
    token = st.dictionaries(st.sampled_from(["role", "secret", "authority", "operator", "name"]),
                            _LEAF, max_size=4)
    return st.fixed_dictionaries({}, optional={
        "http": st.one_of(_LEAF, st.dictionaries(st.sampled_from(["host", "port",
                                                                  "public_url"]), _LEAF)),
        "database": st.dictionaries(st.sampled_from(["url", "pool_min", "pool_max"]), _LEAF),
        "operators": st.one_of(_LEAF, st.lists(operator, max_size=2)),
        "authorities": st.lists(authority, max_size=2),
        "tokens": st.lists(token, max_size=2),
        "feeds": st.lists(st.dictionaries(st.sampled_from(["url", "authority", "interval"]),
                                          _LEAF), max_size=2),
    })


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_tables())
def test_any_document_gives_settings_or_problems(raw: dict[str, Any]) -> None:
    raw = json.loads(json.dumps(raw, default=str).replace("NaN", "null"))  # TOML has no null
    raw = _drop_nulls(raw)
    ctx = config._Context(file=None, cwd=Path("/nonexistent"),
                          secrets=config._Secrets({"CAPCAST_SECRET_A": "b"}, {}, None))
    result = config._build(ctx, config._Table(ctx, "", raw), config=None, secrets_file=None)
    assert isinstance(result, Settings)
    for problem in ctx.problems:
        assert problem.message and isinstance(problem.key, str)


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value if v is not None]
    return value


def test_asked_keys_cover_sections() -> None:
    keys = _example_keys()
    assert {"data_dir", "http.port", "database.url", "targeting.geodata_dir"} <= set(keys)


# -- the line scanner -----------------------------------------------------------------------


def test_key_lines() -> None:
    text = dedent('''\
        top = 1
        [http]
        port = 1
        note = """
        fake = 2
        """
        [[operators]]
        name = "a"
        languages = [
          "de",
        ]
        [operators.exercise]
        gateways = ["x"]
        [[operators.gateways]]
        kind = "smpp-sms"
        [[operators]]
        name = "b"
        [[operators.gateways]]
        "quoted key" = 3
        inline = { a = [1, 2], b = 3 }
        after = 4
        ''')
    lines = config._key_lines(text)
    assert lines["top"] == 1 and lines["http.port"] == 3 and "http.fake" not in lines
    assert lines["operators[0]"] == 7 and lines["operators[0].languages"] == 9
    assert lines["operators[0].exercise.gateways"] == 13
    assert lines["operators[0].gateways[0].kind"] == 15
    assert lines["operators[1].name"] == 17
    assert lines["operators[1].gateways[0].quoted key"] == 19
    assert lines["operators[1].gateways[0].after"] == 21
