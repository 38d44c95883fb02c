"""The base of every layer's own settings model: frozen, and an unknown key is an error."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Settings"]


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
