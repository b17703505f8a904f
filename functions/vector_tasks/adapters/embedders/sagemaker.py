"""A SageMaker real-time endpoint serving a Hugging Face embedding container.

Request `{"inputs": [text, ...]}`; the response is one vector per text (text-embeddings-
inference), or one vector per token per text (the feature-extraction pipeline), which is
mean-pooled here. Vectors are L2-normalised when the model says `normalize`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

from vector_tasks.adapters.embedders.aws_calls import (
    RuntimeEmbedder,
    check_dimension,
    error_code,
    error_message,
    refused,
)
from vector_tasks.domain.embedder import EmbedOutcome

# The container answered 4xx for the request's content (its 5xx and 429 are retried, as
# transient, before this code sees them: aws_calls.is_transient).
_REJECTED_INPUT = "ModelError"


class SageMakerEmbedder(RuntimeEmbedder):
    def _vector(self, values: Any) -> EmbedOutcome:
        array = np.asarray(values, dtype=np.float32)
        if array.ndim == 2:  # token embeddings: mean-pool
            array = array.mean(axis=0)
        check_dimension(self.spec, int(array.shape[-1]))
        if self.spec.normalize:
            norm = float(np.linalg.norm(array))
            if norm == 0:
                return "the model returned a zero vector"
            array = array / norm
        return array

    def _batch(self, texts: list[str], deadline: float) -> list[EmbedOutcome]:
        def request() -> Any:
            return self.client.invoke_endpoint(
                EndpointName=self.spec.provider_model,
                ContentType="application/json",
                Accept="application/json",
                Body=json.dumps({"inputs": texts}),
            )

        try:
            response = self.call(request, deadline)
        except ClientError as exc:
            code, message = error_code(exc), error_message(exc)
            if code == "ValidationError" and "not found" in message.lower():
                reason = (
                    f"endpoint '{self.spec.provider_model}' does not exist in this account and region ({code}); "
                    "create it or correct its provider_model in models.json"
                )
                raise refused(self.spec, exc, reason) from exc
            if code != _REJECTED_INPUT:
                raise
            if len(texts) == 1:
                return [f"rejected by endpoint {self.spec.provider_model}: {message}"]
            return [outcome for text in texts for outcome in self._batch([text], deadline)]
        vectors = json.loads(response["Body"].read())
        if len(vectors) != len(texts):
            raise RuntimeError(
                f"endpoint {self.spec.provider_model} returned {len(vectors)} vectors for {len(texts)} texts"
            )
        return [self._vector(v) for v in vectors]

    def embed(self, texts: list[str], deadline: float) -> list[EmbedOutcome]:
        outcomes: list[EmbedOutcome] = []
        for start in range(0, len(texts), self.spec.batch_size):
            outcomes.extend(self._batch(texts[start : start + self.spec.batch_size], deadline))
        return outcomes
