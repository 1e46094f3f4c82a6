"""``capcast demo --once`` as the README's first command runs it: everything real, one machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CAPCAST = Path(sys.executable).parent / "capcast"


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("XDG_RUNTIME_DIR", "CAPCAST_DATABASE_URL", "CAPCAST_DATA_DIR",
                                "CAPCAST_CONFIG", "CAPCAST_SECRETS_FILE")}
    return subprocess.run([str(CAPCAST), "demo", "--once", *args], capture_output=True,
                          text=True, timeout=300, env=environment, check=False)


def test_demo_once_sends_the_example_alert_through_every_operator(tmp_path: Path) -> None:
    result = demo("--json", "--data-dir", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["all_jobs_completed"] is True
    assert summary["alert"]["http_status"] == 201
    operators = summary["operators"]
    assert set(operators) == {"Alpha", "Bravo", "Charlie"}
    for name, row in operators.items():
        assert row["cells"] > 0, name
        assert row["jobs"] == row["jobs_completed"] >= 1, (name, row)
        assert row["submitted"] >= 1 and row["acknowledged"] == row["submitted"], (name, row)
        assert row["failed"] == 0, (name, row)
    # What the simulators received matches what was recorded as submitted: one create per
    # CBC message, one broadcast_sm per broadcast, and every SMS in the same number of
    # segments (submit_sm), each with its delivery receipt recorded.
    pdus = summary["pdus_at_simulators"]
    assert pdus["cbc"].get("create") == operators["Alpha"]["submitted"]
    assert pdus["smsc"].get("broadcast_sm") == operators["Bravo"]["submitted"]
    segments, rest = divmod(pdus["smsc"]["submit_sm"], operators["Charlie"]["submitted"])
    assert segments >= 1 and rest == 0
    assert operators["Charlie"]["receipts"] == pdus["smsc"]["submit_sm"]
    assert 0 < summary["ingest_to_first_pdu_ms"] < 60_000
    assert set(summary["ingest_timings_ms"]) >= {"validate", "plan", "commit"}

    # A second run reuses the folder (database, inventory) and sends a new live copy.
    again = demo("--data-dir", str(tmp_path / "demo"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "every job completed: yes" in again.stdout
    assert "Alpha" in again.stdout and "Charlie" in again.stdout


def test_demo_names_a_missing_alert_file(tmp_path: Path) -> None:
    result = demo("--data-dir", str(tmp_path / "demo"), "--alert", str(tmp_path / "nope.xml"))
    assert result.returncode == 1
    assert f"cannot read the alert {tmp_path / 'nope.xml'}" in result.stderr
