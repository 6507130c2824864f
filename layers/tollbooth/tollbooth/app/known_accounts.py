"""The account states this process wrote last: a hint that saves a read, never trusted."""

from __future__ import annotations

import threading
from collections import OrderedDict

from tollbooth.domain.ledger import (
    Account,
)


class KnownAccounts:
    """A small LRU of account states this process wrote last. A hint only: never trusted
    for a refusal or a read, always checked by the version guard on write."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._accounts: OrderedDict[str, Account] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, account_id: str) -> Account | None:
        with self._lock:
            account = self._accounts.get(account_id)
            if account is not None:
                self._accounts.move_to_end(account_id)
            return account

    def put(self, account_id: str, account: Account) -> None:
        with self._lock:
            self._accounts[account_id] = account
            self._accounts.move_to_end(account_id)
            while len(self._accounts) > self._capacity:
                self._accounts.popitem(last=False)

    def forget(self, account_id: str) -> None:
        with self._lock:
            self._accounts.pop(account_id, None)
