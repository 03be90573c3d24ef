"""The stack's two error types (the h11 model).

``RemoteProtocolError``: the peer sent something that breaks the protocol. It carries the status code
the stack should answer with (``status_hint``) when a response can be built at all.
``LocalProtocolError``: our own caller misused the API.
"""


class RemoteProtocolError(Exception):
    def __init__(self, reason: str, status_hint: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_hint = status_hint

    def __repr__(self) -> str:
        return f"RemoteProtocolError({self.reason!r}, status_hint={self.status_hint})"


class LocalProtocolError(Exception):
    pass
