"""The ``capcast`` command as a user runs it: a subprocess, real files, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "cap"
CAPCAST = Path(sys.executable).parent / "capcast"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CAPCAST), *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, check=False)


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "cap" in result.stdout


@pytest.mark.parametrize("command", [["cap"], ["cap", "validate"], ["cap", "show"],
                                     ["cap", "convert"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: capcast" in result.stdout


def test_validate_bundled_examples_all_valid() -> None:
    result = run("cap", "validate", str(EXAMPLES))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if not line.startswith(" ")]
    checked = [line for line in lines if line.startswith("valid")]
    assert len(checked) == len([p for p in EXAMPLES.iterdir() if p.suffix != ".md"])
    assert "signature valid" in result.stdout
    assert "all valid" in lines[-1]


def test_validate_json_lines(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    source = (EXAMPLES / "oasis-severe-thunderstorm.xml").read_text()
    bad.write_text(source.replace("<scope>Public</scope>", "<scope>Everyone</scope>"))
    result = run("cap", "validate", "--json", str(bad), str(EXAMPLES / "oasis-amber-geocode.xml"))
    assert result.returncode == 1
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert set(first) == {"file", "valid", "errors", "warnings", "signature"}
    assert first["file"] == str(bad) and first["valid"] is False
    assert first["signature"] == "absent"
    (error,) = first["errors"]
    assert error["code"] == "cap-invalid-value" and error["path"] == "alert/scope"
    assert "Everyone" in error["message"]
    assert second["valid"] is True and second["errors"] == []


def test_validate_human_output_names_the_fix(tmp_path: Path) -> None:
    bad = tmp_path / "open.xml"
    source = (EXAMPLES / "oasis-severe-thunderstorm.xml").read_text()
    bad.write_text(source.replace(" 38.47,-120.14</polygon>", "</polygon>"))
    result = run("cap", "validate", str(bad))
    assert result.returncode == 1
    assert result.stdout.startswith(f"INVALID {bad}")
    assert "alert/info[0]/area[0]/polygon[0]" in result.stdout
    assert "fix: append 38.47,-120.14" in result.stdout


def test_malformed_xml_reports_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "broken.cap"
    bad.write_text('<?xml version="1.0"?>\n<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">\n'
                   "<identifier>x</identifer>\n</alert>\n")
    result = run("cap", "validate", "--json", str(bad))
    assert result.returncode == 1
    (error,) = json.loads(result.stdout)["errors"]
    assert error["code"] == "xml-malformed" and error["line"] == 3


@pytest.mark.parametrize(("args", "message"), [
    (["cap", "validate", "/no/such/file.xml"], "no such file or folder: /no/such/file.xml"),
    (["cap", "validate", "--profile", "nope", str(EXAMPLES)], "nope"),
    (["cap", "validate", "--trust-store", "/no/such/certs", str(EXAMPLES)], "/no/such/certs"),
    (["cap", "validate", "--max-bytes", "lots", str(EXAMPLES)], "not a size"),
    (["cap", "frobnicate"], "invalid choice"),
])
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_empty_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = run("cap", "validate", str(tmp_path))
    assert result.returncode == 2
    assert "no CAP files" in result.stderr


def test_size_limit_option(tmp_path: Path) -> None:
    result = run("cap", "validate", "--json", "--max-bytes", "1k",
                 str(EXAMPLES / "canada-thunderstorm-update.cap"))
    assert result.returncode == 1
    assert json.loads(result.stdout)["errors"][0]["code"] == "xml-too-large"


def test_show_summarizes() -> None:
    result = run("cap", "show", str(EXAMPLES / "oasis-severe-thunderstorm.xml"))
    assert result.returncode == 0, result.stderr
    assert "alert KSTO1055887203" in result.stdout
    assert "from: KSTO@NWS.NOAA.GOV (NATIONAL WEATHER SERVICE SACRAMENTO CA)" in result.stdout
    assert "1 polygon (4 vertices)" in result.stdout
    assert "geocodes: 3 SAME" in result.stdout


def test_show_invalid_alert_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text((EXAMPLES / "oasis-amber-geocode.xml").read_text()
                   .replace("<status>Actual</status>", ""))
    result = run("cap", "show", str(bad))
    assert result.returncode == 1
    assert "alert/status" in result.stderr


def test_convert_round_trip_through_json(tmp_path: Path) -> None:
    as_json = run("cap", "convert", str(EXAMPLES / "canada-thunderstorm-update.cap"),
                  "--to", "json")
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["msgType"] == "Update"
    assert document["info"][1]["language"] == "fr-CA"
    json_file = tmp_path / "alert.json"
    json_file.write_text(as_json.stdout)
    as_xml = run("cap", "convert", str(json_file), "--to", "xml")
    assert as_xml.returncode == 0, as_xml.stderr
    xml_file = tmp_path / "alert.xml"
    xml_file.write_text(as_xml.stdout)
    again = run("cap", "convert", str(xml_file), "--to", "json")
    assert json.loads(again.stdout) == document
    assert run("cap", "validate", str(xml_file)).returncode == 0


def test_convert_upgrades_cap10_to_12() -> None:
    source = REPO / "tests" / "corpus" / "spec" / "oasiscap-v1dot0_appendix_adot2.xml"
    result = run("cap", "convert", str(source), "--to", "xml")
    assert result.returncode == 0
    assert 'xmlns="urn:oasis:names:tc:emergency:cap:1.2"' in result.stdout
    assert "<valueName>SAME</valueName>" in result.stdout


def test_config_check_lists_every_problem_with_its_key(tmp_path: Path) -> None:
    config = tmp_path / "capcast.toml"
    config.write_text('[http]\nport = "x"\n[[operators]]\nnme = "a"\n')
    result = run("config", "check", "--config", str(config))
    assert result.returncode == 1
    assert f"{config}:2: http.port: must be an integer" in result.stdout
    assert "operators[0].nme: unknown key (did you mean 'name'?)" in result.stdout


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    env = {**os.environ, "CAPCAST_DATABASE_URL": "postgresql://capcast:hunter2@db/capcast",
           "CAPCAST_DATA_DIR": str(tmp_path)}
    result = subprocess.run([str(CAPCAST), "config", "show"], capture_output=True, text=True,
                            timeout=120, env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hunter2" not in result.stdout
    assert json.loads(result.stdout)["data_dir"] == str(tmp_path)
