"""The model registry: which embedding models are deployed, read from models.json beside this file.

The file ships inside the function package, so the registry deploys with the stack.
"""

from __future__ import annotations

import enum
import json
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vector_tasks.domain.errors import UnknownEmbeddingModel

REGISTRY_FILE = Path(__file__).with_name("models.json")


class InputSource(enum.StrEnum):
    TEXT = "text"  # a string in the payload is embedded by the model
    VECTOR = "vector"  # the payload carries the finished vector


class ModelInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: InputSource
    # Dotted path inside `payload`, e.g. "text" or "document.body".
    field: str = Field(min_length=1)


class EmbeddingModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$")
    description: str = ""
    provider: Literal["local-hash", "precomputed"]
    dimension: int = Field(ge=1, le=16_000)
    space_type: Literal["cosinesimil", "l2", "innerproduct"]
    input: ModelInput

    @property
    def index_name(self) -> str:
        """The OpenSearch k-NN index that holds this model's vectors."""
        return f"vectors-{self.id}"


class RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[EmbeddingModelSpec] = Field(min_length=1)


class ModelRegistry:
    def __init__(self, models: list[EmbeddingModelSpec]) -> None:
        self._models = {m.id: m for m in models}
        if len(self._models) != len(models):
            raise ValueError("models.json declares the same model id twice")

    @classmethod
    def from_file(cls, path: Path = REGISTRY_FILE) -> ModelRegistry:
        return cls(RegistryFile.model_validate(json.loads(path.read_text())).models)

    def get(self, model_id: str) -> EmbeddingModelSpec:
        try:
            return self._models[model_id]
        except KeyError:
            raise UnknownEmbeddingModel(model_id, self.ids()) from None

    def ids(self) -> list[str]:
        return sorted(self._models)


@cache
def default_registry() -> ModelRegistry:
    return ModelRegistry.from_file()
