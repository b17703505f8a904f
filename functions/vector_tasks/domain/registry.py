"""The model registry: which embedding models are deployed, read from models.json beside this file.

The file ships inside the function package, so the registry deploys with the stack.
"""

from __future__ import annotations

import enum
import json
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vector_tasks.domain.errors import UnknownEmbeddingModel
from vector_tasks.domain.limits import CHUNK_MAX_ITEMS

REGISTRY_FILE = Path(__file__).with_name("models.json")


class InputSource(enum.StrEnum):
    TEXT = "text"  # a string in the payload is embedded by the model
    VECTOR = "vector"  # the payload carries the finished vector


class ModelInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: InputSource
    # Dotted path inside `payload`, e.g. "text" or "document.body".
    field: str = Field(min_length=1)


Provider = Literal[
    "local-hash",  # feature hashing, in process
    "precomputed",  # the caller sends the vector
    "bedrock-titan-v2",  # Amazon Titan Text Embeddings V2 on Bedrock, one text per call
    "bedrock-cohere-v3",  # Cohere Embed v3 on Bedrock, up to 96 texts per call
    "sagemaker-hf",  # a SageMaker endpoint serving a Hugging Face embedding container
    "local-minilm",  # all-MiniLM-L6-v2 in process (the optional MiniLM extra)
]
TITAN_V2_DIMENSIONS = (256, 512, 1024)
COHERE_MAX_BATCH = 96


class EmbeddingModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$")
    description: str = ""
    provider: Provider
    dimension: int = Field(ge=1, le=16_000)
    space_type: Literal["cosinesimil", "l2", "innerproduct"]
    input: ModelInput
    # The provider's own name for the model: a Bedrock model id or a SageMaker endpoint name.
    provider_model: str | None = None
    normalize: bool = True
    batch_size: int = Field(default=32, ge=1, le=1000)
    max_concurrency: int = Field(default=4, ge=1, le=64)
    # Items per chunk, fewer than CHUNK_MAX_ITEMS for a model the worker computes itself: a
    # worker invocation takes up to ten chunks, so a task of smaller chunks is spread over more
    # environments, each embedding on its own CPUs.
    chunk_items: int = Field(default=CHUNK_MAX_ITEMS, ge=1, le=CHUNK_MAX_ITEMS)

    @model_validator(mode="after")
    def _fits_the_provider(self) -> EmbeddingModelSpec:
        wants_vector = self.provider == "precomputed"
        if wants_vector != (self.input.source is InputSource.VECTOR):
            raise ValueError(
                f"model '{self.id}': provider {self.provider} needs input source {'vector' if wants_vector else 'text'}"
            )
        if self.provider == "bedrock-titan-v2" and self.dimension not in TITAN_V2_DIMENSIONS:
            raise ValueError(f"model '{self.id}': Titan V2 dimensions are {TITAN_V2_DIMENSIONS}")
        if self.provider == "bedrock-cohere-v3" and self.batch_size > COHERE_MAX_BATCH:
            raise ValueError(f"model '{self.id}': Cohere Embed v3 takes at most {COHERE_MAX_BATCH} texts per call")
        if self.provider in ("bedrock-titan-v2", "bedrock-cohere-v3", "sagemaker-hf") and not self.provider_model:
            raise ValueError(f"model '{self.id}': provider {self.provider} needs provider_model")
        if self.provider == "local-minilm" and self.dimension != 384:
            raise ValueError(f"model '{self.id}': all-MiniLM-L6-v2 is 384-dimensional")
        return self

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

    def chunk_items(self, model_id: str) -> int:
        """The model's items per chunk; CHUNK_MAX_ITEMS for a model no longer registered (its
        task's retry or import still runs, and fails its items with the model's error)."""
        spec = self._models.get(model_id)
        return spec.chunk_items if spec is not None else CHUNK_MAX_ITEMS


@cache
def default_registry() -> ModelRegistry:
    return ModelRegistry.from_file()
