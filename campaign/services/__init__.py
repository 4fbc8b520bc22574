"""Use cases as plain functions: they take plain values (actor, `now`) and flush, never commit."""

from __future__ import annotations


class ServiceError(Exception):
    """A use case refused its input; the message is safe to show to the user."""


class NotFound(ServiceError):
    """The object does not exist in the acting organisation."""


class PermissionDenied(ServiceError):
    """The actor's role does not allow this."""
