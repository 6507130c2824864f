"""The process's ledger service, built from settings on first use (never at import)."""

from __future__ import annotations

from functools import cache

from tollbooth.catalog import load_history
from tollbooth.operations import LedgerService
from tollbooth.repository import Repository
from tollbooth.settings import get_settings


@cache
def get_service() -> LedgerService:
    settings = get_settings()
    return LedgerService(
        Repository(
            settings.table_name,
            settings.region,
            expiry=settings.expiry_indexing,
            max_transaction_items=settings.max_transaction_items,
        ),
        load_history(),
        max_write_attempts=settings.max_write_attempts,
    )
