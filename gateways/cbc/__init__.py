"""Cell broadcast centres over HTTP: the ECBE REST interface (osmo-cbc and capcast dialects).

:mod:`gateways.cbc.ecbe` is the sans-IO part (request bodies, answers, the
parser a CBC applies); :mod:`gateways.cbc.client` the aiohttp client. The
``capcast`` dialect is documented in ``docs/cbc-rest.md``.
"""

from __future__ import annotations

from gateways.cbc.client import DEFAULT_TIMEOUT, CbcClient, CbcResult
from gateways.cbc.ecbe import (
    Category,
    CbcIllegalState,
    CbcMessage,
    CbcMessageActive,
    CbcNotImplemented,
    CbcRequestRefused,
    CbcTimeout,
    CbcUnexpectedStatus,
    CbcUnknownMessage,
    CbcUnreachable,
    CellId,
    CharacterSet,
    Confirmation,
    DecodedPayload,
    Dialect,
    EcbeOptions,
    EncodedPayload,
    EtwsPayload,
    Operation,
    ReplaceIncomplete,
    ScopeNotSupported,
    SerialForm,
    parse_cell_id,
    payload_for_text,
    repetition_seconds,
    repetition_units,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "Category",
    "CbcClient",
    "CbcIllegalState",
    "CbcMessage",
    "CbcMessageActive",
    "CbcNotImplemented",
    "CbcRequestRefused",
    "CbcResult",
    "CbcTimeout",
    "CbcUnexpectedStatus",
    "CbcUnknownMessage",
    "CbcUnreachable",
    "CellId",
    "CharacterSet",
    "Confirmation",
    "DecodedPayload",
    "Dialect",
    "EcbeOptions",
    "EncodedPayload",
    "EtwsPayload",
    "Operation",
    "ReplaceIncomplete",
    "ScopeNotSupported",
    "SerialForm",
    "parse_cell_id",
    "payload_for_text",
    "repetition_seconds",
    "repetition_units",
]
