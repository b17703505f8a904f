"""The local stack: template.yaml's resources on moto, OpenSearch on osmem, each function in a
container process of its own.

What `sam local start-api` plus an SQS event-source emulator would do, without Docker.
"""
