"""The OpenAI-compatible backend against a real server on loopback (llama-cpp-python's own)."""

import sys

import pytest

from rag.generator import OpenAICompatibleGenerator, SamplingParams, generate, generator_from_settings
from rag.index import DocumentIndex
from rag.models import default_gguf_path
from rag.pipeline import QueryOptions, QueryPipeline
from tests.conftest import free_port, subprocess_server


@pytest.fixture(scope="module")
def llama_server():
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(default_gguf_path()), "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", "2048"]
    with subprocess_server(command, f"http://127.0.0.1:{port}/v1/models"):
        yield f"http://127.0.0.1:{port}/v1"


def test_remote_generation_and_pipeline(llama_server, demo_settings, embedder):
    settings = demo_settings.with_overrides(llm_base_url=llama_server)
    generator = generator_from_settings(settings)
    assert isinstance(generator, OpenAICompatibleGenerator)
    text = generate(generator, [{"role": "user", "content": "Say hello."}], SamplingParams(max_tokens=12, seed=1))
    assert text.strip()
    pipeline = QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder, generator)
    answer = pipeline.answer("What does error E7 mean on the thermostat?",
                             QueryOptions(answer_mode="generative", sampling=SamplingParams(max_tokens=40)))
    assert answer.trace.details["generator"] == "local-model" and answer.trace.details["generated"]
    assert answer.citations and answer.citations[0].source == "thermolink_t200_manual.pdf"
