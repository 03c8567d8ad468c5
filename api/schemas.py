"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class QueryFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[str] = Field(default_factory=list, description="Only these source files.")
    element_types: list[Literal["text", "table", "title", "list"]] = Field(default_factory=list)
    page_min: int | None = Field(None, ge=1)
    page_max: int | None = Field(None, ge=1)


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(..., min_length=1, max_length=4000, description="The question, in Spanish or English.")
    top_k: int | None = Field(None, ge=1, le=50, description="Sources handed to the model.")
    filters: QueryFilters | None = None
    answer_mode: Literal["generative", "extractive", "auto"] | None = None
    retrieval_mode: Literal["hybrid", "bm25", "dense"] | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    seed: int | None = None


class CitationOut(BaseModel):
    source: str
    page: int | None
    chunk_id: str
    score: float
    text: str


class QueryResponse(BaseModel):
    answer: str
    abstained: bool
    citations: list[CitationOut]
    trace: dict[str, Any]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
