"""Domain refusals (with a contract error code) and outside services' errors.

Raised by the core and the workers; the hall turns them into HTTP answers,
the result backend carries them to /api/tasks/{id}.
"""


class Refused(Exception):
    """A business refusal (e.g. already_paid): the task ends FAILURE with this code.

    Its args are (code, message) so the hall can rebuild {code, message}
    from the result backend without importing this module.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


class GatewayError(Exception):
    """An outside service (WeChat Pay, the SMS provider) refused an operation.

    code, message and HTTP status all go to Exception.__init__, so `args`
    can rebuild it: Celery's result backend re-creates it as cls(*args).
    """

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(code, message, status)
        self.code = code
        self.message = message
        self.status = status

    def __str__(self) -> str:
        tail = f" (HTTP {self.status})" if self.status else ""
        return f"{self.code}: {self.message}{tail}"
