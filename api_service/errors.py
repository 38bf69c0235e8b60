"""Domain errors: what services and queries raise when a request cannot be honoured.

They know nothing of HTTP; ``problems`` turns each into a problem body at the
edge (404, 400, 409, 403, 401, 412, 503).
"""


class DomainError(Exception):
    """A request that cannot be honoured; ``detail`` says why, for the caller."""

    title = "Error"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class NotFound(DomainError):
    """No such object, or one the caller may not see (its existence is not revealed)."""

    title = "Not Found"

    def __init__(self, kind: str, object_id: object, *, field: str | None = None) -> None:
        prefix = f"{field}: " if field else ""
        super().__init__(f"{prefix}{kind} {object_id} not found.", field=field)


class Invalid(DomainError):
    """A value the rules refuse; ``field`` names it."""

    title = "Invalid Request"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)
        self.message = message


class UnsupportedOption(Invalid):
    """The load balancer's provider does not support an option the request asks for."""

    title = "Unsupported Option"

    def __init__(self, provider: str, field: str, option: str) -> None:
        DomainError.__init__(
            self,
            f"Provider '{provider}' does not support a requested option: {option}.",
            field=field,
        )
        self.message = f"provider '{provider}' does not support {option}"


class Conflict(DomainError):
    """The request contradicts the current state (a change in flight, a duplicate)."""

    title = "Conflict"


class Forbidden(DomainError):
    """The caller's role or project may not do this."""

    title = "Forbidden"


class QuotaExceeded(Forbidden):
    title = "Quota Exceeded"


class Unauthenticated(DomainError):
    """No valid token."""

    title = "Unauthorized"


class StaleVersion(DomainError):
    """The object changed since the version (ETag) the caller named."""

    title = "Precondition Failed"


class NoCapacity(DomainError):
    """No device (or no address) has room now; worth retrying later."""

    def __init__(self, title: str, detail: str, *, retry_after: int = 30) -> None:
        super().__init__(detail)
        self.title = title
        self.retry_after = retry_after
