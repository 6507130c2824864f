"""Usage ingestion: a batch of SQS messages from AI workers, charged exactly once.

Each message is parsed on its own; records are grouped by account across the whole
batch and each account's records are charged in as few transactions as fit. A record
that can never be charged (bad schema, unknown feature, quantity out of range, an
event_id reused with different contents) is logged with its reason, counted, and sent to
the dead-letter queue, wrapped as a message of its own that can be redriven once the
cause is fixed. A message is retried only when something it holds could not be written:
a busy account, storage or the dead-letter queue failing, or an unexpected error while
charging one account (which never touches the other accounts of the batch). On a
message's last receive, what still could not be charged is dead-lettered with its reason
instead, so nothing reaches the dead-letter queue without one. Retrying is always safe:
records already charged are recognised by their event_id and charged nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

from tollbooth.app.outbox import AfterCommit
from tollbooth.app.ports import DeadLetters, Publisher
from tollbooth.app.service import LedgerService
from tollbooth.contracts.usage import Rejected, UsageRecord, message_body, parse_message
from tollbooth.domain.errors import ConcurrentUpdate, StorageUnavailable
from tollbooth.observability import count, logger


@dataclass
class IngestionReport:
    messages: int = 0
    records: int = 0
    charged: int = 0
    charged_credits: int = 0  # millicredits
    duplicates: int = 0
    rejected: int = 0
    retried_messages: int = 0
    accounts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Message:
    message_id: str
    records: list[UsageRecord] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    retry_reason: str | None = None
    last_receive: bool = False  # SQS will not deliver it again: dead-letter, never retry

    def could_not_charge(self, record: UsageRecord, reason: str) -> None:
        if self.last_receive:
            self.rejected.append(Rejected(reason=f"not charged: {reason}", record=record.model_dump(mode="json")))
        else:
            self.retry_reason = reason


class UsageIngestor:
    def __init__(self, service: LedgerService, publisher: Publisher, dead_letters: DeadLetters) -> None:
        self.service = service
        self.publisher = publisher
        self.dead_letters = dead_letters
        self._after_commit = AfterCommit(service.writes, service.repository, publisher)

    def ingest(
        self, messages: list[tuple[str, str]], last_receive: Collection[str] = ()
    ) -> tuple[dict[str, str], IngestionReport]:
        """Charge a batch of (message_id, body); return the messages to retry (with why).

        ``last_receive`` names the messages SQS will not deliver again."""
        report = IngestionReport(messages=len(messages))
        parsed = []
        for message_id, body in messages:
            records, rejected = parse_message(body)
            parsed.append(_Message(message_id, records, rejected, last_receive=message_id in last_receive))
            report.records += len(records) + len(rejected)
        by_account: dict[str, list[tuple[_Message, UsageRecord]]] = {}
        for message in parsed:
            for record in message.records:
                by_account.setdefault(record.account_id, []).append((message, record))
        report.accounts = len(by_account)
        for account_id, items in by_account.items():
            self._charge_account(account_id, items, report)
        for message in parsed:
            self._dead_letter(message, report)
        retry = {m.message_id: m.retry_reason for m in parsed if m.retry_reason is not None}
        report.retried_messages = len(retry)
        return retry, report

    def _charge_account(
        self, account_id: str, items: list[tuple[_Message, UsageRecord]], report: IngestionReport
    ) -> None:
        try:
            outcomes, written = self.service.ingest_usage(account_id, [record for _, record in items])
        except (ConcurrentUpdate, StorageUnavailable) as error:
            logger.warning("usage not charged", extra={"account_id": account_id, "reason": error.message})
            for message, record in items:
                message.could_not_charge(record, error.message)
            return
        except Exception as error:  # a bug or a surprise: it costs this account's records, not the batch
            logger.exception("usage not charged: unexpected error", extra={"account_id": account_id})
            count("UsageAccountsFailed")
            for message, record in items:
                message.could_not_charge(record, f"unexpected error ({type(error).__name__}); see the logs")
            return
        for (message, record), outcome in zip(items, outcomes, strict=True):
            if outcome.status == "charged":
                report.charged += 1
                report.charged_credits += outcome.charged
            elif outcome.status == "duplicate":
                report.duplicates += 1
            else:
                message.rejected.append(
                    Rejected(reason=outcome.reason or "rejected", record=record.model_dump(mode="json"))
                )
        if written is not None and (written.pending_events or written.spilled):
            self._after_commit.empty(account_id, written)  # on failure, safe in the outbox for the sweep

    def _dead_letter(self, message: _Message, report: IngestionReport) -> None:
        # A message that will be delivered again is dead-lettered then, once, not now.
        if not message.rejected or message.retry_reason is not None:
            return
        for rejected in message.rejected:
            record = rejected.record if isinstance(rejected.record, dict) else {}
            logger.warning(
                "usage record rejected",
                extra={
                    "message_id": message.message_id,
                    "event_id": record.get("event_id"),
                    "account_id": record.get("account_id"),
                    "reason": rejected.reason,
                },
            )
        count("UsageRecordsRejected", len(message.rejected))
        report.rejected += len(message.rejected)
        whole = len(message.rejected) == 1 and isinstance(message.rejected[0].record, str)
        body = message.rejected[0].record if whole else message_body([r.record for r in message.rejected])
        try:
            self.dead_letters.send(str(body), [r.reason for r in message.rejected], message.message_id)
        except StorageUnavailable as error:
            message.retry_reason = error.message
