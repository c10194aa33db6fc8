"""The workers' database binding and transaction helper."""
from __future__ import annotations

from typing import Any

import models
import settings

_bound = False


def bind() -> Any:
    """Bind models.db to a plain (blocking) peewee database, once per process."""
    global _bound
    if not _bound:
        models.init_db(settings.DATABASE_URL, asynchronous=False)
        _bound = True
    return models.db
