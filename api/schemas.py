"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_PAGE = 1_000_000_000


class QueryFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[str] = Field(default_factory=list, description="Only these source files.")
    element_types: list[Literal["text", "table", "title", "list"]] = Field(default_factory=list)
    # Bounded so that the stores' integer types holds them (Chroma refuses a filter beyond 64 bits): 422, not 500.
    page_min: int | None = Field(None, ge=1, le=MAX_PAGE)
    page_max: int | None = Field(None, ge=1, le=MAX_PAGE)


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The lengths are settings (RAG_MAX_TEXT_CHARS, default 4,000 characters; RAG_MAX_HISTORY, 20), checked by
    # the route: api/limits.py.
    question: str = Field(..., min_length=1, description="The question, in Spanish or English (at most "
                                                         "RAG_MAX_TEXT_CHARS characters, default 4,000).")
    history: list[str] = Field(default_factory=list,
                               description="The conversation's earlier questions, oldest first: a follow-up "
                                           "(\"¿Y las leves?\") is searched with their topic (at most "
                                           "RAG_MAX_HISTORY items, default 20).")
    collection: str | None = Field(None, max_length=63, description="The collection to search (default: the "
                                                                     "default collection); GET /v1/collections.")
    top_k: int | None = Field(None, ge=1, le=50, description="Sources handed to the model.")
    filters: QueryFilters | None = None
    answer_mode: Literal["generative", "extractive", "auto"] | None = None
    retrieval_mode: Literal["hybrid", "bm25", "dense"] | None = None
    rerank: bool | None = Field(None, description="Re-rank the fused candidates (default: RAG_RERANK).")
    query_expansion: list[Literal["decompose", "multi-query", "hyde"]] | None = Field(
        None, description="Extra retrieval queries (default: RAG_QUERY_EXPANSION); [] turns expansion off.")
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    seed: int | None = None
    sampling_top_k: int | None = Field(None, ge=0, description="top_k sampling of the model (0 = off).")
    repeat_penalty: float | None = Field(None, ge=0.0, le=5.0)


class CitationOut(BaseModel):
    source: str
    page: int | None
    chunk_id: str
    score: float
    text: str
    quote_start: int | None = Field(None, description="Start of the quoted sentence (or table row) in `text`, "
                                                      "in characters; set on quoted (extractive) answers.")
    quote_end: int | None = Field(None, description="End of the quoted span in `text` (exclusive).")
    ocr_engine: str | None = Field(None, description="Set when the cited text was read by OCR from a scan.")
    ocr_confidence: float | None = Field(None, description="That OCR's mean word confidence on the text (0-100).")


class QueryResponse(BaseModel):
    answer: str = Field(description="The answer, with [n] citation markers; it opens with the short answer "
                                    "and a dash when there is one.")
    abstained: bool
    citations: list[CitationOut]
    trace: dict[str, Any]
    short_answer: str | None = Field(None, description="The span that answers what the question asks for (an "
                                                       "amount, a date, a deadline, a count, a person or body, a "
                                                       "place, an article; 'Sí'/'Yes'/'No'), or null.")
    short_citation: int | None = Field(None, description="Which citation (1-based) holds the short answer.")
    short_start: int | None = Field(None, description="Start of the short answer in that citation's `text`, in "
                                                      "characters; for a yes/no answer, of the sentence that "
                                                      "decides it.")
    short_end: int | None = Field(None, description="End of that span (exclusive).")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class QueryStreamRequest(QueryRequest):
    stream: bool = False


class ChunksRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(..., min_length=1, description="At most RAG_MAX_TEXT_CHARS characters (default 4,000).")
    limit: int = Field(10, ge=1, le=100)
    collection: str | None = Field(None, max_length=63, description="The collection to search (default: the "
                                                                     "default collection); GET /v1/collections.")
    filters: QueryFilters | None = None
    prev_next_chunks: int = Field(0, ge=0, le=10, description="Neighbouring chunks of the same document to add.")


class ChunkOut(BaseModel):
    chunk_id: str
    text: str
    score: float
    source: str
    page: int | None
    element_type: str
    document_id: str
    previous_texts: list[str] = Field(default_factory=list)
    next_texts: list[str] = Field(default_factory=list)


class ChunksResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[ChunkOut]


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str = Field(description="At most RAG_MAX_TEXT_CHARS characters (default 4,000).")


class ChatRequest(BaseModel):
    """OpenAI's chat-completions body plus PrivateGPT's ``use_context`` and our retrieval options."""

    model_config = ConfigDict(extra="ignore")  # OpenAI clients send fields we do not use (n, user, ...)

    messages: list[ChatMessage] = Field(..., min_length=1, description="At most RAG_MAX_MESSAGES (default 32).")
    model: str | None = Field(None, description="A collection's name searches that collection (GET /v1/models "
                                                "lists them); anything else, the default collection.")
    stream: bool = False
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    seed: int | None = None
    top_k: int | None = Field(None, ge=0, description="top_k sampling (llama.cpp and Ollama accept it too).")
    repeat_penalty: float | None = Field(None, ge=0.0, le=5.0)
    use_context: bool = True
    include_sources: bool = True
    context_filter: QueryFilters | None = None
    answer_mode: Literal["generative", "extractive", "auto"] | None = None


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input: str | list[str] = Field(description="At most RAG_MAX_EMBEDDING_INPUTS texts (default 256) of at most "
                                               "RAG_MAX_TEXT_CHARS characters (default 4,000).")
    model: str | None = None


class IngestTextRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_name: str = Field(..., min_length=1, max_length=200)
    text: str = Field(..., min_length=1)
    collection: str | None = Field(None, max_length=63, description="The collection to add it to (default: the "
                                                                     "default collection); GET /v1/collections.")


class HandoverPathRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(..., min_length=1, max_length=4096,
                      description="Absolute path: the folder or file to ingest, or the snapshot to write.")
    collection: str | None = Field(None, max_length=63, description="The collection to ingest into.")


class CollectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=63,
                      description="1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit.")


class CollectionOut(BaseModel):
    name: str
    documents: int


class CollectionsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[CollectionOut]


class DocumentOut(BaseModel):
    id: str
    source: str
    pages: int
    chunks: int
    content_hash: str
    ingested_at: float


class DocumentsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[DocumentOut]


class DeletedDocument(BaseModel):
    deleted: DocumentOut


class DeletedCollection(BaseModel):
    deleted: str


class FailureOut(BaseModel):
    source: str
    reason: str
    detail: str = ""


class IngestResult(BaseModel):
    ingested: list[str]
    unchanged: list[str]
    failed: list[FailureOut]
    chunks: int
    pages: int
    seconds: float
    documents: list[DocumentOut] = Field(default_factory=list)


class JobOut(BaseModel):
    id: str
    file_name: str
    collection: str = Field("default", description="The collection the job ingests into.")
    state: Literal["queued", "running", "done", "failed"]
    created_at: float
    finished_at: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    progress: dict[str, Any] = Field(default_factory=dict, description="Files done, to do, the current one.")
    files_done: int = Field(0, description="Files ingested or failed so far.")
    files_total: int = Field(0, description="Files this job ingests (new or changed ones).")
    pages_done: int = Field(0, description="Pages of the files done.")
    pages_total: int = Field(0, description="Pages of all its files: a PDF's or image's counted before "
                                            "reading, an Office or text file's added once it is read.")
    pages_per_second: float = Field(0.0, description="Pages done per second since the first file began.")
    eta_seconds: float | None = Field(None, description="Seconds left at that rate (null: not known yet).")
    elapsed_seconds: float = Field(0.0, description="Seconds since the first file began.")


class JobAccepted(BaseModel):
    job: JobOut
    status_url: str


class ReadyOut(BaseModel):
    status: Literal["ready"] = "ready"
    chunks: int
    documents: int
    generator: str
    embedder: str = Field(description="Judge embedder: evidence, grounding, compression.")
    dense: str = Field("", description="Embedder of the dense index (its vectors and the queries').")


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


class EmbeddingOut(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    data: list[EmbeddingOut]
    usage: Usage


class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: ChatMessageOut
    finish_reason: str
    sources: list[CitationOut] | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    trace: dict[str, Any] | None = None


class FieldError(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    """Every error response: what went wrong in words a person can act on; ``errors`` names the fields of
    an invalid request; ``request_id`` (500 only) is what the server log names beside the stack trace."""

    detail: str
    errors: list[FieldError] | None = None
    request_id: str | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text} for status, text in (
        (401, "missing or wrong API key"), (403, "the key may not do this in this collection"),
        (404, "no such collection, document or job"), (413, "the request body is over its limit"),
        (422, "the request is invalid; the message says why"),
        (504, "the request ran past its time limit (RAG_REQUEST_TIMEOUT_S) and was stopped"),
        (500, "a fault of the server; the log has the details under request_id"))}
