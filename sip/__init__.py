"""A sans-IO SIP stack (RFC 3261 and friends). Knows nothing of GB/T 28181.

Layers, bottom up: parser/serializer (message bytes), uri/address/via (structured headers),
auth (digest), transaction (RFC 3261 §17 FSMs), dialog (§12), endpoint (the sans-IO facade), and
aio/ (the only asyncio code: UDP and TCP adapters).
"""

from sip.errors import LocalProtocolError, RemoteProtocolError
from sip.limits import Limits
from sip.message import Request, Response, make_response
from sip.parser import StreamFramer, parse_message
from sip.serializer import serialize

__all__ = [
    "Limits",
    "LocalProtocolError",
    "RemoteProtocolError",
    "Request",
    "Response",
    "StreamFramer",
    "make_response",
    "parse_message",
    "serialize",
]
