"""Issue 45 in a real browser (Debian's chromium driven by Playwright, as tests/test_browser.py): a page of
another origin on this machine can neither upload to the API nor read from it, and an uploaded HTML file opened
from the API does not run its script. The server has no key: rag serve's default."""

from __future__ import annotations

import json
import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.test_browser import CHROMIUM, _browser_page, playwright  # noqa: F401 - skips without chromium

from api.app import create_app  # noqa: E402
from rag.index import DocumentIndex  # noqa: E402
from rag.pipeline import QueryPipeline  # noqa: E402
from tests.conftest import ScriptedGenerator, free_port, serve, wait_for  # noqa: E402

ATTACK = """<!doctype html><meta charset="utf-8"><title>cat pictures</title><pre id="out">running</pre>
<script>
const api = "%(api)s", results = {};
async function attempt(name, run) {
  try { results[name] = await run(); } catch (e) { results[name] = "error: " + e; }
}
(async () => {
  // A multipart POST is a "simple" request: the browser sends it without asking the server first.
  await attempt("upload", async () => {
    const form = new FormData();
    const html = "<p>The cafeteria serves lunch at noon every day.</p><script>document.title = 1<\\/script>";
    form.append("file", new Blob([html], {type: "text/html"}), "planted.html");
    const r = await fetch(api + "/v1/ingest/file", {method: "POST", body: form, mode: "no-cors"});
    return "sent: " + r.type;
  });
  await attempt("read", async () => (await (await fetch(api + "/v1/documents")).text()));
  await attempt("form", async () => {
    const form = document.createElement("form");
    form.method = "POST"; form.action = api + "/v1/ingest/text"; form.enctype = "text/plain";
    form.target = "sink";
    const field = document.createElement("input");
    field.name = '{"file_name": "planted2", "text": "x", "pad": "'; field.value = '"}';
    form.appendChild(field);
    const sink = document.createElement("iframe"); sink.name = "sink"; document.body.appendChild(sink);
    document.body.appendChild(form); form.submit();
    return "submitted";
  });
  document.getElementById("out").textContent = JSON.stringify(results);
})();
</script>"""

HTML_UPLOAD = """<!doctype html><title>menu</title><p>Lunch at noon.</p>
<script>
document.title = "pwned";
fetch("/v1/collections", {method: "POST", headers: {"content-type": "application/json"},
                          body: JSON.stringify({name: "pwned"})});
</script>"""


@pytest.fixture(scope="module")
def api(tmp_path_factory, demo_settings, embedder):
    """The app without a key over a copy of the demo index, on a real server."""
    root = tmp_path_factory.mktemp("browser-safety")
    shutil.copytree(demo_settings.index_dir, root / "index")
    settings = demo_settings.with_overrides(index_dir=root / "index")
    pipeline = QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder, ScriptedGenerator())
    with serve(create_app(settings, pipeline=pipeline)) as base:
        yield base, settings


@pytest.fixture
def attacker(tmp_path, api):
    """A page on another loopback port: another origin, as any web page the user visits."""
    base, _ = api
    (tmp_path / "index.html").write_text(ATTACK % {"api": base}, encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", free_port()),
                                 partial(SimpleHTTPRequestHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()


def _sources(base: str) -> list[str]:
    return [d["source"] for d in httpx.get(f"{base}/v1/documents").json()["data"]]


def test_a_page_of_another_origin_can_neither_upload_nor_read(api, attacker):
    base, settings = api
    before = _sources(base)
    with playwright.sync_playwright() as pw:
        browser, page, _ = _browser_page(pw, "en-US")
        page.goto(attacker)
        page.wait_for_function("document.getElementById('out').textContent !== 'running'")
        page.wait_for_timeout(1000)  # the form's POST lands in its frame
        results = json.loads(page.inner_text("#out"))
        browser.close()
    assert results["read"].startswith("error:"), results  # no CORS: the page cannot read the answer
    assert _sources(base) == before  # nothing was planted, by fetch or by form
    assert not settings.uploads.exists() or not any(settings.uploads.iterdir())


def test_an_uploaded_html_file_opened_from_the_api_runs_no_script(api):
    base, _ = api
    uploaded = httpx.post(f"{base}/v1/ingest/file", files={"file": ("menu.html", HTML_UPLOAD.encode(), "text/html")})
    assert uploaded.status_code == 200, uploaded.text
    doc_id = uploaded.json()["documents"][0]["id"]
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_context(accept_downloads=True).new_page()
        page.goto(base + "/")  # the API's origin, as a user who uses the page
        with page.expect_download() as download:
            page.evaluate("url => { location.href = url; }", f"{base}/v1/documents/{doc_id}/file")
        assert download.value.suggested_filename == "menu.html"
        page.wait_for_timeout(500)
        assert page.title() != "pwned"
        # Even framed by a page of this origin (frame-ancestors and the sandbox refuse it), it does not run.
        page.goto(base + "/")
        page.evaluate("""url => { const f = document.createElement('iframe'); f.src = url;
                                  document.body.appendChild(f); }""", f"{base}/v1/documents/{doc_id}/file")
        page.wait_for_timeout(1500)
        browser.close()
    collections = [c["name"] for c in httpx.get(f"{base}/v1/collections").json()["data"]]
    assert "pwned" not in collections
    wait_for(lambda: httpx.delete(f"{base}/v1/documents/{doc_id}").status_code == 200, "the upload to go")
