"""The process's Powertools Logger, Tracer and Metrics, shared by every entry point."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Tollbooth")
# Reads publish no business metric; that is expected, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def count(metric: str, value: int = 1) -> None:
    """Add to a business metric. Observability must never fail work that already committed."""
    try:
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)
    except Exception:
        logger.exception("metric not recorded", extra={"metric": metric})
