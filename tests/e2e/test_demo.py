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


def test_demo_keeps_serving_until_sigterm_then_stops_everything(tmp_path: Path) -> None:
    import signal
    import time
    import urllib.request

    folder = tmp_path / "demo"
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("XDG_RUNTIME_DIR", "CAPCAST_DATABASE_URL", "CAPCAST_DATA_DIR")}
    with subprocess.Popen([str(CAPCAST), "demo", "--data-dir", str(folder), "--port", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=environment) as process:
        try:
            assert process.stdout is not None and process.stderr is not None
            lines = []
            deadline = time.monotonic() + 240
            url = None
            while time.monotonic() < deadline:
                line = process.stdout.readline()
                if not line:
                    break
                lines.append(line)
                if "keeps running at" in line:
                    url = line.split("keeps running at ")[1].split(" ")[0]
                    break
            assert url is not None, "".join(lines) + process.stderr.read()
            with urllib.request.urlopen(f"{url}/readyz", timeout=10) as response:
                assert response.status == 200
            assert (folder / "postgres" / "postgres" / "postmaster.pid").exists()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    # The embedded PostgreSQL was stopped with the demo, not left behind.
    assert not (folder / "postgres" / "postgres" / "postmaster.pid").exists()
