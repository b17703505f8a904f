"""What differs between the two task kinds at the API, in one place (the client's classes per
kind, `UpsertionTasks` and `DeletionTasks`, add their task model and create's signature)."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    UPSERTION = "upsertion"
    DELETION = "deletion"

    @property
    def path(self) -> str:
        """The routes' common prefix: /internal/{kind}-tasks."""
        return f"/internal/{self.value}-tasks"

    @property
    def items_field(self) -> str:
        """The create body's list: items (upsertion) or object_ids (deletion)."""
        return "items" if self is Kind.UPSERTION else "object_ids"
