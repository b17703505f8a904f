"""What every embedding provider offers: texts in, one vector or one reason out per text.

The port of the domain; the providers are adapters (`adapters/embedders/`). numpy is named for
the type checker only, so the API functions, which import the domain but make no vectors,
never load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

Vector: TypeAlias = "npt.NDArray[np.float32]"
# Per text: its vector, or a sentence saying why this text cannot be embedded (too long, say),
# which becomes that item's failure detail while the other items go on.
EmbedOutcome: TypeAlias = "Vector | str"


class TextEmbedder(Protocol):
    def embed(self, texts: list[str], deadline: float) -> list[EmbedOutcome]:
        """One outcome per text, in order. `deadline` (time.monotonic()) bounds the retries of
        transient provider errors; past it the embedder raises so the chunk is retried later.
        Raises TaskCannotRun when the model cannot be used at all."""
        ...
