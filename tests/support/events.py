"""The one loader of events/*.json, the same files `sam local invoke -e` uses."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"


@cache
def _read(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    return event


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of events/<name>.json, safe to modify."""
    return copy.deepcopy(_read(name))


def event_names() -> list[str]:
    return sorted(p.stem for p in EVENTS_DIR.glob("*.json"))
