"""``capcast serve`` and ``capcast worker`` refuse a bad start with a message naming the input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CAPCAST = Path(sys.executable).parent / "capcast"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("XDG_RUNTIME_DIR", "CAPCAST_DATABASE_URL", "CAPCAST_DATA_DIR",
                                "CAPCAST_CONFIG", "CAPCAST_SECRETS_FILE")}
    return subprocess.run([str(CAPCAST), *args], capture_output=True, text=True, timeout=180,
                          env=environment, check=False)


def test_a_bad_configuration_names_the_key_and_line(tmp_path: Path) -> None:
    config = tmp_path / "capcast.toml"
    config.write_text('[http]\nport = "eighty"\n', encoding="utf-8")
    for command in ("serve", "worker"):
        result = run(command, "--config", str(config), "--data-dir", str(tmp_path / "data"))
        assert result.returncode == 1, result.stderr
        assert "capcast: configuration has 1 problem" in result.stderr
        assert f"{config}:2: http.port: must be an integer" in result.stderr, result.stderr
        assert not (tmp_path / "data" / "postgres").exists(), "nothing started"


def test_a_missing_cell_inventory_stops_the_start_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "cells" / "nope.parquet"
    config = tmp_path / "capcast.toml"
    config.write_text(f'[[operators]]\nname = "opa"\nplmn = "001-01"\n'
                      f'inventory = "{missing}"\n', encoding="utf-8")
    result = run("worker", "--config", str(config), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cannot start" in result.stderr or "inventory" in result.stderr, result.stderr
    assert str(missing) in result.stderr, result.stderr
