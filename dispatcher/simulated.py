"""The service on one machine over simulators, as ``capcast demo`` and ``bench dispatch`` set it up.

Three operators with one gateway kind each, on loopback simulators:
Alpha (cell broadcast over ECBE REST to the CBC simulator), Bravo (SMPP 5.0
``broadcast_sm`` to the SMSC simulator) and Charlie (location-based SMS to the
SMSC simulator). This module writes their sample inventories, the
configuration and the secrets file (mode 0600); the callers start the
simulators and the service.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["OPERATORS", "SimulatedSetup", "sample_inventories", "write_private",
           "write_secrets"]

OPERATORS = ("Alpha", "Bravo", "Charlie")


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (a secrets file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def write_secrets(path: Path, *, smpp_secret: str, smpp_password: str,
                  tokens: Mapping[str, str]) -> None:
    """The secrets file: the SMPP password and the SHA-256 of each bearer token by name."""
    write_private(path, f"[secrets]\n{smpp_secret} = {json.dumps(smpp_password)}\n" + "".join(
        f"{name} = \"{hashlib.sha256(token.encode()).hexdigest()}\"\n"
        for name, token in tokens.items()))


def sample_inventories(folder: Path, n_cells: int, *, bbox: tuple[float, float, float, float],
                       seed: int = 1) -> tuple[dict[str, Path], bool]:
    """One GeoParquet per operator, synthesized once per size, area and seed.

    Returns the paths and whether they were built now (False: reused). Each
    file is written beside its name and renamed, so an interrupted run never
    leaves half a file to be reused.
    """
    from geo.synth import synthesize

    tag = hashlib.sha256(json.dumps([n_cells, seed, list(bbox)]).encode()).hexdigest()[:12]
    paths = {name: folder / f"{name.lower()}-{tag}.parquet" for name in OPERATORS}
    if all(p.exists() for p in paths.values()):
        return paths, False
    inventory = synthesize(n_cells, seed=seed, bbox=bbox, operators=OPERATORS)
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in inventory.by_operator().items():
        partial = paths[name].with_suffix(".partial.parquet")
        part.save(partial, progress=False)
        partial.replace(paths[name])
    return paths, True


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatedSetup:
    """What differs between the demo's and the benchmark's configuration."""

    #: Who wrote the file (its first comment line).
    written_by: str
    #: The CAP sender of the one authority, its statuses and its token's secret name.
    sender: str
    authority_name: str
    statuses: Sequence[str] = ("Actual",)
    authority_token: str
    #: The secret name of the SMPP password (the same for both SMPP gateways).
    smpp_secret: str
    http_port: int = 0
    min_overlap: float = 0.0
    alpha_languages: Sequence[str] = ("en",)
    #: Whether Charlie's location-based SMS gateway is enabled.
    sms: bool = True
    sms_throughput: float | None = None
    #: Let Exercise and Test alerts through every operator's gateway (drills).
    exercises: bool = False
    #: (name, role, secret) of further tokens, bound to the authority for a manager.
    tokens: Sequence[tuple[str, str, str]] = ()

    def config(self, folder: Path, *, inventories: Mapping[str, Path], smsc_port: int,
               cbc_url: str) -> str:
        """The configuration TOML for a service in ``folder`` over these simulators."""
        def q(value: object) -> str:
            return json.dumps(str(value))

        def listed(values: Sequence[str]) -> str:
            return "[" + ", ".join(q(v) for v in values) + "]"

        def exercise(gateway: str) -> str:
            if not self.exercises:
                return ""
            return (f"[operators.exercise]\ngateways = [{q(gateway)}]\n"
                    f"[operators.test]\ngateways = [{q(gateway)}]\n")

        tokens = "".join(
            f"\n[[tokens]]\nname = {q(name)}\nrole = {q(role)}\nsecret = {q(secret)}\n"
            + (f"authority = {q(self.sender)}\n" if role == "manager" else "")
            for name, role, secret in self.tokens)
        throughput = (f"throughput = {self.sms_throughput!r}\n"
                      if self.sms_throughput is not None else "")
        return f"""# Written by {self.written_by} (simulators on loopback).
data_dir = {q(folder)}

[http]
host = "127.0.0.1"
port = {self.http_port}

[targeting]
min_overlap = {self.min_overlap!r}

[[authorities]]
sender = {q(self.sender)}
name = {q(self.authority_name)}
statuses = {listed(self.statuses)}
tokens = [{q(self.authority_token)}]

[[operators]]
name = "Alpha"
display_name = "Alpha (cell broadcast, ECBE REST)"
plmn = "001-01"
inventory = {q(inventories["Alpha"])}
languages = {listed(self.alpha_languages)}
{exercise("cbc")}
[[operators.gateways]]
name = "cbc"
kind = "cbc-rest"
url = {q(cbc_url)}
dialect = "capcast"
timeout = 10.0
retries = 2

[[operators]]
name = "Bravo"
display_name = "Bravo (cell broadcast, SMPP 5.0)"
plmn = "001-02"
inventory = {q(inventories["Bravo"])}
languages = ["en"]
{exercise("smsc-cb")}
[[operators.gateways]]
name = "smsc-cb"
kind = "smpp-broadcast"
host = "127.0.0.1"
port = {smsc_port}
system_id = "bravo"
password_secret = {q(self.smpp_secret)}
window = 16

[[operators]]
name = "Charlie"
display_name = "Charlie (location-based SMS)"
plmn = "001-03"
inventory = {q(inventories["Charlie"])}
languages = ["en"]
{exercise("lbsms")}
[[operators.gateways]]
name = "lbsms"
kind = "smpp-sms"
enabled = {"true" if self.sms else "false"}
host = "127.0.0.1"
port = {smsc_port}
system_id = "charlie"
password_secret = {q(self.smpp_secret)}
window = 64
{throughput}source = "ALERT"
{tokens}"""
