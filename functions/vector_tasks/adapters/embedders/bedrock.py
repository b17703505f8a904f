"""Embedding models on Amazon Bedrock: Titan Text Embeddings V2 and Cohere Embed v3."""

from __future__ import annotations

import contextvars
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

from vector_tasks.adapters.embedders.aws_calls import RuntimeEmbedder, check_dimension, error_code, error_message
from vector_tasks.domain.embedder import EmbedOutcome

# A request the model refuses for what is in it (too long, empty): that text fails, not the task.
_REJECTED_INPUT = "ValidationException"
COHERE_MAX_CHARACTERS = 2048


def _body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"].read())


class _BedrockEmbedder(RuntimeEmbedder):
    def _invoke_model(self, body: dict[str, Any], deadline: float) -> Any:
        def request() -> Any:
            return self.client.invoke_model(
                modelId=self.spec.provider_model,
                body=json.dumps(body),
                contentType="application/json",
                accept="application/json",
            )

        return _body(self.call(request, deadline))

    def _vector(self, values: list[float]) -> EmbedOutcome:
        check_dimension(self.spec, len(values))
        return np.asarray(values, dtype=np.float32)


class TitanV2Embedder(_BedrockEmbedder):
    """One text per InvokeModel call, as Titan requires; calls run `max_concurrency` at a time."""

    def _one(self, text: str, deadline: float) -> EmbedOutcome:
        body = {"inputText": text, "dimensions": self.spec.dimension, "normalize": self.spec.normalize}
        try:
            response = self._invoke_model(body, deadline)
        except ClientError as exc:
            if error_code(exc) == _REJECTED_INPUT:
                return f"rejected by {self.spec.provider_model}: {error_message(exc)}"
            raise
        return self._vector(response["embedding"])

    def embed(self, texts: list[str], deadline: float) -> list[EmbedOutcome]:
        if self.spec.max_concurrency == 1 or len(texts) <= 1:
            return [self._one(text, deadline) for text in texts]
        # Each call runs in a copy of this thread's context (contextvars), which pool threads do
        # not inherit: what reads it (the local stack's permission check) sees the caller.
        context = contextvars.copy_context()
        with ThreadPoolExecutor(max_workers=min(self.spec.max_concurrency, len(texts))) as pool:
            return list(pool.map(lambda text: context.copy().run(self._one, text, deadline), texts))


class CohereV3Embedder(_BedrockEmbedder):
    """Batches of up to `batch_size` (at most 96) texts per call, input_type search_document.

    A batch the model rejects is retried text by text, so one bad text fails alone.
    """

    def _batch(self, texts: list[str], deadline: float) -> list[EmbedOutcome]:
        body = {"texts": texts, "input_type": "search_document", "truncate": "NONE"}
        try:
            response = self._invoke_model(body, deadline)
        except ClientError as exc:
            if error_code(exc) != _REJECTED_INPUT:
                raise
            if len(texts) == 1:
                return [f"rejected by {self.spec.provider_model}: {error_message(exc)}"]
            return [outcome for text in texts for outcome in self._batch([text], deadline)]
        embeddings = response["embeddings"]
        if isinstance(embeddings, dict):  # the shape when embedding_types is requested
            embeddings = embeddings["float"]
        if len(embeddings) != len(texts):
            raise RuntimeError(f"{self.spec.provider_model} returned {len(embeddings)} vectors for {len(texts)} texts")
        return [self._vector(values) for values in embeddings]

    def embed(self, texts: list[str], deadline: float) -> list[EmbedOutcome]:
        outcomes: list[EmbedOutcome | None] = [None] * len(texts)
        sendable: list[int] = []
        for i, text in enumerate(texts):
            if len(text) > COHERE_MAX_CHARACTERS:
                outcomes[i] = (
                    f"is {len(text)} characters; {self.spec.provider_model} accepts at most {COHERE_MAX_CHARACTERS}"
                )
            else:
                sendable.append(i)
        for start in range(0, len(sendable), self.spec.batch_size):
            indexes = sendable[start : start + self.spec.batch_size]
            for i, outcome in zip(indexes, self._batch([texts[i] for i in indexes], deadline), strict=True):
                outcomes[i] = outcome
        assert all(o is not None for o in outcomes)
        return outcomes  # type: ignore[return-value]
