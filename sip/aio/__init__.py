"""The only asyncio code of the SIP stack: UDP and TCP transports and the runner that drives an Endpoint."""

from sip.aio.runner import SipRunner, TransactionError, tune_gc

__all__ = ["SipRunner", "TransactionError", "tune_gc"]
