"""Exceptions a task raises to refuse work with a contract error code."""


class Refused(Exception):
    """A business refusal (e.g. already_paid): the task ends FAILURE with this code.

    Its args are (code, message) so the hall can rebuild {code, message}
    from the result backend without importing this module.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
