"""The web page in a real browser (Debian's chromium driven by Playwright): key prompt, ask, streamed answer,
sources with the quote highlighted, the cited PDF opened at its page, a follow-up, an abstention, documents
(upload, delete, an upload job's progress bar), in Spanish and English, without console errors. Screenshots go to ``RAG_SCREENSHOTS``
(default: the test's temporary folder)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("browser tests need Debian's chromium (apt-get install chromium; make test installs it as root)",
                allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api", reason="pip install '.[test]' brings playwright")

from api.app import create_app  # noqa: E402
from ingest.pipeline import FolderIngestor  # noqa: E402
from rag.index import DocumentIndex  # noqa: E402
from rag.pipeline import QueryPipeline  # noqa: E402
from rag.settings import Settings  # noqa: E402
from tests.conftest import DATA, policy_pipeline, serve  # noqa: E402

KEY = "browser-k3y"


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder, llm):
    """`rag serve`'s app on a real uvicorn server over data/, with a key and the embedded GGUF declared
    capable (so that answers are generated and stream token by token)."""
    root = tmp_path_factory.mktemp("browser")
    docs = root / "docs"
    shutil.copytree(DATA, docs)
    settings = Settings(index_dir=root / "index", api_key=KEY, llm_capable=True)
    FolderIngestor(settings, embedder=embedder).run(docs)
    pipeline = QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder, llm)
    pipeline.warm_up()
    with serve(create_app(settings, pipeline=pipeline)) as base:
        yield base


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("RAG_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _browser_page(pw, locale: str):
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    # The first request without a key is answered 401 (that is how the page learns it needs one): the
    # browser logs that response as an error, and only that one is expected.
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "401" not in m.text else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return browser, page, errors


def _enter_key(page) -> None:
    page.wait_for_selector("#key-dialog[open]")
    page.fill("#key", KEY)
    page.keyboard.press("Enter")


def _ask(page, question: str, timeout_ms: int = 240_000):
    before = page.locator('[data-testid="answer"]').count()
    page.fill('[data-testid="question"]', question)
    page.keyboard.press("Enter")  # Enter sends
    answer = page.locator('[data-testid="answer"]').nth(before)
    turn = page.locator("article.turn").nth(before)
    turn.locator("details").wait_for(state="attached", timeout=timeout_ms)  # the final answer arrived
    return answer, turn


CASES = {
    "es": {"locale": "es-ES", "placeholder": "Pregunte sobre sus documentos",
           "question": "¿Cuál es la dosis máxima diaria de paracetamol en adultos?", "gold": "4 g",
           "source": "prospecto_paracetamol.pdf", "page": 2, "follow_up": "¿Y en niños?", "searched": "Se buscó",
           "far_off": "¿Quién ganó el mundial de fútbol de 2010?", "abstention": "No he encontrado",
           "streamed": "¿Cuántos días por semana se puede teletrabajar?", "delete": "Eliminar"},
    "en": {"locale": "en-US", "placeholder": "Ask about your documents",
           "question": "What does error E7 mean on the thermostat?", "gold": "C wire",
           "source": "thermolink_t200_manual.pdf", "page": 2, "follow_up": "And error E4?", "searched": "Searched for",
           "far_off": "Who won the football world cup in 2010?", "abstention": "I could not find",
           "streamed": "How long does the thermostat warranty last?", "delete": "Delete"},
}


@pytest.mark.parametrize("lang", ["es", "en"])
def test_ask_read_sources_follow_up_and_abstain(server, shots, lang):
    case = CASES[lang]
    with playwright.sync_playwright() as pw:
        browser, page, errors = _browser_page(pw, case["locale"])
        page.goto(server + "/")
        _enter_key(page)  # the page asks for the key on the first 401 and keeps it for the tab
        assert page.get_attribute("html", "lang") == lang
        assert page.get_attribute('[data-testid="question"]', "placeholder") == case["placeholder"]

        answer, turn = _ask(page, case["question"])
        assert case["gold"] in answer.inner_text()
        citations = turn.locator('[data-testid="citation"]')
        assert citations.count() >= 1 and case["source"] in citations.first.inner_text()
        page.screenshot(path=str(shots / f"{lang}-answer-with-sources.png"), full_page=True)

        citations.first.click()
        mark = page.locator("#source-text mark:not(.short)")  # the quote (a short answer is marked inside it)
        assert mark.count() == 1 and mark.inner_text().strip().split("\n")[-1] in answer.inner_text()
        page.screenshot(path=str(shots / f"{lang}-citation-highlighted.png"), full_page=True)
        with page.context.expect_page() as opened:
            page.click("#open-file")
        viewer = opened.value
        viewer.wait_for_load_state()
        # The URL proves the page; the screenshot shows the viewer there.
        assert viewer.url.startswith("blob:") and viewer.url.endswith(f"#page={case['page']}")
        viewer.wait_for_timeout(3000)  # for the picture only: the viewer paints its pages after loading
        viewer.screenshot(path=str(shots / f"{lang}-cited-pdf-at-page.png"))
        viewer.close()

        follow, follow_turn = _ask(page, case["follow_up"])
        assert case["searched"] in follow_turn.inner_text()  # searched with the previous question's topic
        assert case["source"] in follow_turn.locator('[data-testid="citation"]').first.inner_text()
        page.screenshot(path=str(shots / f"{lang}-follow-up.png"), full_page=True)

        none, _ = _ask(page, case["far_off"])
        assert case["abstention"] in none.inner_text()
        assert "abstained" in (none.get_attribute("class") or "")
        page.screenshot(path=str(shots / f"{lang}-abstention.png"), full_page=True)
        browser.close()
    assert not errors, errors


@pytest.mark.parametrize("lang", ["es", "en"])
def test_streamed_answer_and_documents(server, shots, tmp_path, lang):
    case = CASES[lang]
    with playwright.sync_playwright() as pw:
        browser, page, errors = _browser_page(pw, case["locale"])
        page.goto(server + "/")
        _enter_key(page)
        answer, turn = _ask(page, case["streamed"])
        assert int(answer.get_attribute("data-tokens") or 0) > 0  # tokens were shown as the model wrote them
        assert turn.locator('[data-testid="citation"]').count() >= 1
        page.screenshot(path=str(shots / f"{lang}-streamed-answer.png"), full_page=True)

        page.click("#show-docs")
        rows = page.locator('[data-testid="document"]')
        rows.first.wait_for()
        assert rows.count() == 4
        note = tmp_path / f"visiting_hours_{lang}.md"
        note.write_text("# Visiting hours\n\nVisitors are welcome from 10:00 to 20:00 every day.", encoding="utf-8")
        page.set_input_files("#files", str(note))
        page.locator("#upload-log li", has_text=note.name).filter(has_text="(").wait_for(timeout=120_000)
        page.locator('[data-testid="document"]', has_text=note.name).wait_for()
        page.screenshot(path=str(shots / f"{lang}-documents.png"), full_page=True)

        page.once("dialog", lambda dialog: dialog.accept())  # "Delete … from the index?"
        page.get_by_role("button", name=f"{case['delete']} {note.name}").click()
        page.locator('[data-testid="document"]', has_text=note.name).wait_for(state="detached")
        assert rows.count() == 4
        browser.close()
    assert not errors, errors


@pytest.fixture(scope="module")
def job_server(tmp_path_factory, embedder):
    """A server whose every upload becomes a background job; nothing is asked, so no model generates."""
    settings, pipeline = policy_pipeline(tmp_path_factory.mktemp("browser-jobs") / "index", embedder,
                                         api_key=KEY, background_ingest_mb=0.001)
    with serve(create_app(settings, pipeline=pipeline)) as base:
        yield base


_WATCH_UPLOADS = """() => {
  window.seen = { bars: 0, notes: [] };
  const log = document.getElementById("upload-log");
  new MutationObserver(() => {
    if (log.querySelector('[data-testid="upload-progress"]')) window.seen.bars += 1;
    const note = log.querySelector(".progress-note");
    if (note && note.textContent) window.seen.notes.push(note.textContent);
  }).observe(log, { childList: true, subtree: true, characterData: true, attributes: true });
}"""


def test_an_upload_job_shows_a_progress_bar_until_done(job_server, shared, shots, tmp_path):
    import re

    pdf = tmp_path / "progress_demo.pdf"
    shutil.copy(shared / "corpus" / "pdf_text" / "en_pdflatex_4_pages.pdf", pdf)
    with playwright.sync_playwright() as pw:
        browser, page, errors = _browser_page(pw, "en-US")
        page.goto(job_server + "/")
        _enter_key(page)
        page.click("#show-docs")
        page.evaluate(_WATCH_UPLOADS)
        page.set_input_files("#files", str(pdf))
        page.locator('[data-testid="upload-progress"]').wait_for(state="attached")
        page.screenshot(path=str(shots / "en-upload-progress.png"), full_page=True)
        line = page.locator("#upload-log li", has_text=pdf.name).filter(has_text="(")
        line.wait_for(timeout=120_000)
        assert "ingested" in line.inner_text() and line.locator("progress").count() == 0  # the outcome replaced it
        seen = page.evaluate("window.seen")
        browser.close()
    assert seen["bars"] > 0
    # Whatever the polls caught of the running job reads as pages done of the total, pages/s, time left.
    shape = re.compile(r"^\d+/4 pages( · [\d.]+ pages/s)?( · about .+ left)?$")
    assert all(shape.match(note) for note in seen["notes"]), seen["notes"]
    assert not errors, errors
