"""The local stack: template.yaml's resources on moto, OpenSearch on osmem, handlers in-process.

What `sam local start-api` plus an SQS event-source emulator would do, without containers.
"""
