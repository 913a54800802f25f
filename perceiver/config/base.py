"""The one strict pydantic base of every config in this project (model, data, pipeline)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown keys are errors (named by pydantic), values are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)
