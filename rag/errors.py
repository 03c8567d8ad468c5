"""Errors a caller can act on, apart from the program's own faults."""

from __future__ import annotations


class InvalidRequest(ValueError):
    """A request asks for something that cannot be done (an empty question, an unknown expansion or mode);
    the message says what. The HTTP API answers it with 422; any other exception is a server fault (500)."""
