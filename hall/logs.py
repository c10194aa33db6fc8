"""Log lines of the hall never carry a token.

Clients may still open `/ws?token=<JWT>` (API.md), and Tornado's access log
(`tornado.access`) and its "Uncaught exception GET /ws?token=..." lines
(`tornado.application`) print the whole URI. `RedactSecrets` rewrites every
record before it is written: `token=` values in query strings, `Bearer`
credentials, and anything shaped like a JWT, in the message, its arguments and
the formatted traceback alike.
"""
from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

_PATTERNS = (
    # ?token=... / &token=... / access_token=... up to the next separator
    (re.compile(r"((?:^|[?&;\s\"'])(?:access_)?token=)[^&\s\"';)]*", re.IGNORECASE),
     r"\1" + REDACTED),
    (re.compile(r"(Bearer\s+)[A-Za-z0-9\-_.~+/]+=*", re.IGNORECASE), r"\1" + REDACTED),
    # a JWT anywhere (header.payload.signature, base64url, header starts "eyJ")
    (re.compile(r"eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*"), REDACTED),
)

# Tornado's loggers log the URI themselves; a filter on a logger only sees that
# logger's own records, so these get one too (besides every root handler).
TORNADO_LOGGERS = ("tornado.access", "tornado.application", "tornado.general",
                   "tornado.websocket")


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactSecrets()


def install() -> None:
    """Redact every line this process writes: on each handler of the root
    logger (records of every logger pass through them) and on Tornado's own
    loggers (for handlers added to them directly). Idempotent."""
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    for name in TORNADO_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
