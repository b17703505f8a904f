"""Configuration, read once per cold start from the environment template.yaml sets."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    task_table_name: str = Field(min_length=1)
    # The tasks' items (chunks): a table without a stream (template.yaml ChunkTable).
    chunk_table_name: str = Field(min_length=1)
    work_queue_url: str = Field(min_length=1)
    opensearch_endpoint: str = Field(min_length=1)
    # "sigv4" signs requests for an Amazon OpenSearch Service domain; "none" is for local stacks.
    opensearch_auth: Literal["sigv4", "none"] = "sigv4"
    aws_region: str = Field(min_length=1)
    # How long the store keeps a task's items and results, and a final task (template.yaml).
    item_retention_days: int = Field(ge=1)
    task_retention_days: int = Field(ge=1)
    # Only the completion-events publisher is given this.
    event_bus_name: str | None = None
    # Only the transition function is given these (template.yaml); others never read them.
    restart_state_machine_arn: str | None = None
    cancel_state_machine_arn: str | None = None
    # The import queue (first steps, continuations) and the buckets imports may read, comma
    # separated (template.yaml ImportBuckets; empty: imports are refused).
    import_queue_url: str | None = None
    import_buckets: str = ""
    # Only the reconciler is given this: how long a task may make no progress before it acts.
    reconcile_stall_after_seconds: int | None = Field(default=None, ge=0)

    @property
    def import_bucket_names(self) -> frozenset[str]:
        return frozenset(name.strip() for name in self.import_buckets.split(",") if name.strip())

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls.model_validate({key.lower(): value for key, value in env.items()})


@cache
def settings() -> Settings:
    return Settings.from_env(os.environ)
