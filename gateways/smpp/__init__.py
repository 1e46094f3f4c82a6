"""SMPP for capcast: the PDU codec, a sans-IO session, and an asyncio client.

* :mod:`gateways.smpp.codec`: PDU records and their bytes (smpplib's codec for
  SMPP 3.4, ours for the SMPP 5.0 broadcast PDUs and the hot path).
* :mod:`gateways.smpp.session`: the session state machine, both roles, no I/O.
* :mod:`gateways.smpp.client`: the asyncio ESME (windows, throttling,
  keepalive, reconnects, receipts, bulk jobs).
* :mod:`gateways.smpp.errors`: the ``command_status`` registry.
"""
