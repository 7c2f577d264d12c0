"""Domain errors. The HTTP layer maps each class to a status in one table."""

from __future__ import annotations


class DomainError(Exception):
    """A problem a caller can act on: `message` says what, `field` says where."""

    code = "error"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "field": self.field}


class BadInput(DomainError):
    """Malformed input: wrong type, missing field, out of range."""

    code = "bad_input"


class TooLarge(BadInput):
    """A body over the 10 MB API Gateway accepts."""

    code = "too_large"


class UnsupportedMedia(BadInput):
    """A body of a media type the endpoint does not read."""

    code = "unsupported_media_type"


class Unauthorized(DomainError):
    """No API key, or a key nobody holds."""

    code = "unauthorized"


class Forbidden(DomainError):
    """A known key acting for someone it may not act for."""

    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    """Already done, wrong state, overlap, lost a race."""

    code = "conflict"


class RuleBroken(DomainError):
    """Well-formed input that breaks a rule of the registry."""

    code = "rule_broken"
