"""Embedding providers, one per `provider` of a registered model (domain/models.json)."""

from __future__ import annotations

import boto3
from botocore.config import Config

from vector_tasks.adapters.embedders.bedrock import CohereV3Embedder, TitanV2Embedder
from vector_tasks.adapters.embedders.hashing import HashingEmbedder
from vector_tasks.adapters.embedders.sagemaker import SageMakerEmbedder
from vector_tasks.domain.embedder import TextEmbedder
from vector_tasks.domain.registry import EmbeddingModelSpec

# Retries are ours (with the worker's time budget); botocore's own would multiply them.
_RUNTIME_CONFIG = Config(
    retries={"max_attempts": 1, "mode": "standard"}, read_timeout=30, connect_timeout=5, max_pool_connections=64
)


def embedder_for(spec: EmbeddingModelSpec) -> TextEmbedder:
    if spec.provider == "local-hash":
        return HashingEmbedder(spec.dimension)
    if spec.provider == "bedrock-titan-v2":
        return TitanV2Embedder(spec, lambda: boto3.client("bedrock-runtime", config=_RUNTIME_CONFIG))
    if spec.provider == "bedrock-cohere-v3":
        return CohereV3Embedder(spec, lambda: boto3.client("bedrock-runtime", config=_RUNTIME_CONFIG))
    if spec.provider == "sagemaker-hf":
        return SageMakerEmbedder(spec, lambda: boto3.client("sagemaker-runtime", config=_RUNTIME_CONFIG))
    if spec.provider == "local-minilm":
        from vector_tasks.adapters.embedders.minilm import MiniLMEmbedder

        return MiniLMEmbedder(spec.dimension, batch_size=spec.batch_size)
    raise ValueError(f"model '{spec.id}' (provider {spec.provider}) does not embed text")


def preload(embedder: TextEmbedder) -> None:
    """Load the model of an embedder that runs in this process, where it can be loaded (the
    MiniLM extra installed); nothing for one that calls a service."""
    from vector_tasks.adapters.embedders.minilm import MiniLMEmbedder, extra_installed

    if isinstance(embedder, MiniLMEmbedder) and extra_installed():
        embedder.load()
