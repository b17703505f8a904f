"""Logger, Tracer and Metrics, created once; the service name comes from the template."""

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer

# Most invocations (reads, transitions) publish no custom metric; that is expected, not news.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="VectorIngestion")
