"""Who and where the current unit of work comes from: a request, a task or a command.

Set once by the request middleware (or a task), read by the audit log and the logging
filter, so neither has to be handed the request.
"""

import uuid
from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    source_ip: str | None = None


_current: ContextVar[RequestContext | None] = ContextVar("bankside_request_context", default=None)


def current() -> RequestContext | None:
    return _current.get()


def bind(context: RequestContext) -> Token[RequestContext | None]:
    """Make `context` current; returns the token that `reset` takes."""
    return _current.set(context)


def reset(token: Token[RequestContext | None]) -> None:
    _current.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex
