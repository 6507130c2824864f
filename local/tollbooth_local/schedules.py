"""EventBridge schedules for the local stack: moto never fires scheduled rules, so we do.

Each schedule in template.yaml invokes its function every ``rate(...)``, or every
``EXPIRY_RATE_SECONDS`` when that is set (to watch expiry happen in seconds, not
minutes). ``run_now`` is what ``make expire-now`` reaches, through the gateway.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from tollbooth_local.aws import ACCOUNT, REGION
from tollbooth_local.template import ScheduleSpec

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int:
    match = _RATE.match(expression.strip())
    if not match:
        raise ValueError(f"the local stack runs rate(...) schedules only, not {expression!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def scheduled_event(function_id: str, schedule: str) -> dict[str, Any]:
    """The event EventBridge sends a function on a schedule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/tollbooth-local-{function_id}{schedule}"],
        "detail": {},
    }


class Scheduler:
    def __init__(
        self,
        schedules: list[tuple[ScheduleSpec, int]],
        invoke: Callable[[str, dict[str, Any]], Any],
        report: Callable[[str], None] = print,
    ) -> None:
        self._schedules = schedules  # each with its interval in seconds
        self._invoke = invoke
        self._report = report
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Scheduler:
        for spec, seconds in self._schedules:
            thread = threading.Thread(
                target=self._loop, args=(spec, seconds), name=f"schedule-{spec.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def _loop(self, spec: ScheduleSpec, seconds: int) -> None:
        while not self._stopped.wait(seconds):
            try:
                result = self.run_now(spec.function_id)
                self._report(f"{spec.function_id} on schedule: {result}")
            except Exception as error:  # a failed run is retried at the next tick, as on AWS
                self._report(f"{spec.function_id} on schedule failed: {error!r}")

    def run_now(self, function_id: str) -> Any:
        specs = [spec for spec, _ in self._schedules if spec.function_id == function_id]
        if not specs:
            raise KeyError(function_id)
        return self._invoke(function_id, scheduled_event(function_id, specs[0].name))

    def stop(self) -> None:
        self._stopped.set()
