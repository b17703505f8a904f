"""Logger, Tracer and Metrics, created once; the service name comes from the template."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="VectorIngestion")
