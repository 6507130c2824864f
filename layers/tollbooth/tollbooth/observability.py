"""The process's Powertools Logger and Metrics, shared by every entry point.

Tracing is Lambda's own (``Tracing: Active``) plus ``tollbooth.tracing``'s subsegments, in
place of Powertools Tracer: the X-Ray SDK it imports cost more than importing boto3."""

from __future__ import annotations

import os
import warnings

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit, single_metric

logger = Logger()
# The template names one namespace per stack (Tollbooth/<stack>), so alarms never mix stacks.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "Tollbooth")
# Reads publish no business metric; that is expected, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def count(metric: str, value: int = 1) -> None:
    """Add to a business metric. Observability must never fail work that already committed."""
    try:
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)
    except Exception:
        logger.exception("metric not recorded", extra={"metric": metric})


def count_by(metric: str, dimension: str, value: str, amount: int = 1) -> None:
    """Add to a metric of its own, split by one dimension (a feature, an error code)."""
    try:
        with single_metric(name=metric, unit=MetricUnit.Count, value=amount, namespace=metrics.namespace) as one:
            one.add_dimension(name=dimension, value=value)
    except Exception:
        logger.exception("metric not recorded", extra={"metric": metric})
