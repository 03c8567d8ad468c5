"""Text generation backends: a local GGUF through llama-cpp-python, or an OpenAI-compatible server."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from rag.models import ModelNotFoundError, default_gguf_path
from rag.settings import Settings

log = logging.getLogger(__name__)

Message = dict[str, str]


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int = 256
    temperature: float = 0.1
    top_p: float = 0.9
    top_k: int = 40
    repeat_penalty: float = 1.1
    seed: int = 42

    @classmethod
    def from_settings(cls, settings: Settings) -> SamplingParams:
        return cls(max_tokens=settings.max_tokens, temperature=settings.temperature, top_p=settings.top_p,
                   top_k=settings.sampling_top_k, repeat_penalty=settings.repeat_penalty, seed=settings.seed)


@runtime_checkable
class Generator(Protocol):
    """Chat completion over a list of messages; ``stream`` yields text pieces as they come."""

    model_id: str

    def stream(self, messages: list[Message], params: SamplingParams) -> Iterator[str]: ...


def generate(generator: Generator, messages: list[Message], params: SamplingParams) -> str:
    """The whole completion as one string (convenience over ``Generator.stream``)."""
    return "".join(generator.stream(messages, params))


class LlamaCppGenerator:
    """A GGUF model run in-process with llama-cpp-python, using the GGUF's own chat template.

    The model is loaded on first use; one completion runs at a time (llama.cpp contexts are not
    thread-safe), guarded by a lock owned by this object.
    """

    def __init__(self, model_path: str | Path | None = None, n_ctx: int = 2048, n_threads: int | None = None) -> None:
        self.model_path = Path(model_path) if model_path else default_gguf_path()
        if not self.model_path.is_file():
            raise ModelNotFoundError(f"GGUF file not found: {self.model_path} (RAG_LLM_MODEL)")
        self.model_id = self.model_path.name
        self.n_ctx = n_ctx
        # llama-cpp-python's own default generates on half the cores; the setting promises all of them.
        self.n_threads = n_threads or os.cpu_count() or 1
        self._llm = None
        self.lock = threading.Lock()
        self._load_lock = threading.Lock()  # two first requests at once load the model once

    @property
    def llm(self):
        if self._llm is None:
            with self._load_lock:
                if self._llm is None:
                    from llama_cpp import Llama

                    log.info("loading GGUF %s", self.model_path)
                    self._llm = Llama(model_path=str(self.model_path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                                      verbose=False)
        return self._llm

    def warm_up(self) -> None:
        _ = self.llm

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` with the model's own tokenizer."""
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count_messages(self, messages: list[Message]) -> int:
        """Tokens the model reads for ``messages``: rendered with the GGUF's chat template (role markers,
        separators, the assistant prompt), plus a BOS token."""
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            return sum(self.count_tokens(m["content"]) + TEMPLATE_TOKENS_PER_MESSAGE for m in messages) + 8
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        model = self.llm._model
        formatter = Jinja2ChatFormatter(template=template, eos_token=model.token_get_text(self.llm.token_eos()),
                                        bos_token=model.token_get_text(self.llm.token_bos()))
        prompt = formatter(messages=messages).prompt
        return len(self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)) + 1

    def stream(self, messages: list[Message], params: SamplingParams) -> Iterator[str]:
        with self.lock:
            chunks = self.llm.create_chat_completion(
                messages=messages, max_tokens=params.max_tokens, temperature=params.temperature,
                top_p=params.top_p, top_k=params.top_k, repeat_penalty=params.repeat_penalty, seed=params.seed,
                stream=True)
            for chunk in chunks:
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield piece


class OpenAICompatibleGenerator:
    """Any OpenAI-compatible chat server (LM Studio, Ollama, llama-server, vLLM) reached by base URL."""

    def __init__(self, base_url: str, model: str = "local-model", api_key: str = "not-needed",
                 timeout: float = 120.0) -> None:
        from openai import OpenAI

        self.client = OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=1)
        self.model_id = model
        self.base_url = base_url

    def stream(self, messages: list[Message], params: SamplingParams) -> Iterator[str]:
        response = self.client.chat.completions.create(
            model=self.model_id, messages=messages, max_tokens=params.max_tokens, temperature=params.temperature,
            top_p=params.top_p, seed=params.seed, stream=True,
            extra_body={"top_k": params.top_k, "repeat_penalty": params.repeat_penalty})
        for event in response:
            if event.choices and event.choices[0].delta.content:
                yield event.choices[0].delta.content


# Role markers and separators a chat template adds around each message, when it cannot be rendered (a server).
TEMPLATE_TOKENS_PER_MESSAGE = 8


def token_counter(generator: Generator) -> tuple[Callable[[str], int], bool]:
    """The generator's own token counter, else an estimate (about 3.5 characters a token); the flag says which."""
    count = getattr(generator, "count_tokens", None)
    if count is not None:
        return count, True
    return (lambda text: int(len(text) / 3.5) + 1), False


def generator_from_settings(settings: Settings) -> Generator:
    """The configured backend: an OpenAI-compatible URL when set, else the local GGUF."""
    if settings.llm_base_url:
        return OpenAICompatibleGenerator(settings.llm_base_url, settings.llm_remote_model,
                                         settings.llm_api_key.get_secret_value())
    return LlamaCppGenerator(settings.llm_model, n_ctx=settings.llm_context, n_threads=settings.llm_threads)
