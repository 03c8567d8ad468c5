// The local-rag page: ask (streamed answers with sources), read the cited source, manage documents.
// Plain JavaScript, no build step, nothing loaded from outside this server.
"use strict";

const BASE = location.pathname.replace(/\/[^/]*$/, "");
const LANG = (navigator.language || "en").toLowerCase().startsWith("es") ? "es" : "en";
const TEXT = {
  en: {
    collection: "Collection", ask: "Ask", documents: "Documents", newConversation: "New conversation",
    question: "Question", placeholder: "Ask about your documents", send: "Send", name: "Name", pages: "Pages",
    chunks: "Chunks", when: "Ingested", drop: "Drop files here, or press Enter to choose them",
    choose: "Choose files", openFile: "Open the document at this page", close: "Close",
    keyPrompt: "This server needs an API key", save: "Use this key", searching: "Searching…",
    searched: "Searched for", trace: "Why this answer (trace)", remove: "Delete",
    confirmDelete: "Delete {name} from the index?", uploading: "Ingesting {name}…",
    ingested: "{name}: ingested ({chunks} chunks)", unchanged: "{name}: already there, unchanged",
    failed: "{name}: failed — {reason}", page: "p.", error: "Error: {message}",
    sourceTitle: "{source}, page {page}", filesDone: "{done}/{total} files", pagesDone: "{done}/{total} pages",
    rate: "{rate} pages/s", eta: "about {time} left",
  },
  es: {
    collection: "Colección", ask: "Preguntar", documents: "Documentos", newConversation: "Nueva conversación",
    question: "Pregunta", placeholder: "Pregunte sobre sus documentos", send: "Enviar", name: "Nombre",
    pages: "Páginas", chunks: "Fragmentos", when: "Ingerido", drop: "Suelte aquí los archivos, o pulse Intro para elegirlos",
    choose: "Elegir archivos", openFile: "Abrir el documento en esta página", close: "Cerrar",
    keyPrompt: "Este servidor necesita una clave de API", save: "Usar esta clave", searching: "Buscando…",
    searched: "Se buscó", trace: "Por qué esta respuesta (traza)", remove: "Eliminar",
    confirmDelete: "¿Eliminar {name} del índice?", uploading: "Ingiriendo {name}…",
    ingested: "{name}: ingerido ({chunks} fragmentos)", unchanged: "{name}: ya estaba, sin cambios",
    failed: "{name}: ha fallado — {reason}", page: "p.", error: "Error: {message}",
    sourceTitle: "{source}, página {page}", filesDone: "{done}/{total} archivos",
    pagesDone: "{done}/{total} páginas", rate: "{rate} páginas/s", eta: "quedan unos {time}",
  },
}[LANG];

const $ = (id) => document.getElementById(id);
const t = (key, values = {}) => TEXT[key].replace(/\{(\w+)\}/g, (_, name) => values[name] ?? "");
let conversation = [];  // earlier questions of this conversation, oldest first
let openCitation = null;

function translate() {
  document.documentElement.lang = LANG;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = TEXT[el.dataset.i18n]; });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
    el.placeholder = TEXT[el.dataset.i18nPlaceholder];
  });
}

// --- the API, with the key kept for this tab only --------------------------------------------------------
function askForKey() {
  return new Promise((resolve) => {
    const dialog = $("key-dialog");
    dialog.addEventListener("close", () => {
      sessionStorage.setItem("rag-key", $("key").value.trim());
      resolve();
    }, { once: true });
    dialog.showModal();
    $("key").focus();
  });
}

async function api(path, options = {}, retried = false) {
  const headers = new Headers(options.headers || {});
  const key = sessionStorage.getItem("rag-key");
  if (key) headers.set("Authorization", `Bearer ${key}`);
  if (options.body && typeof options.body === "string") headers.set("Content-Type", "application/json");
  const response = await fetch(BASE + path, { ...options, headers });
  if (response.status === 401 && !retried) {
    await askForKey();
    return api(path, options, true);
  }
  return response;
}

async function failure(response) {
  try { return (await response.json()).detail || response.statusText; } catch { return response.statusText; }
}

function collection() { return $("collection").value || null; }

async function loadCollections() {
  const response = await api("/v1/collections");
  if (!response.ok) return;
  const select = $("collection");
  const current = select.value;
  select.replaceChildren(...(await response.json()).data.map((c) => new Option(c.name, c.name)));
  if (current) select.value = current;
}

// --- ask ------------------------------------------------------------------------------------------------
function render(turn, answer) {
  const box = turn.querySelector(".answer");
  const short = answer.short_answer;
  box.replaceChildren();
  if (short) {
    // The short answer in bold above the rest; a quoted answer opens with it, so it is not repeated.
    const strong = document.createElement("strong");
    strong.className = "short-answer";
    strong.dataset.testid = "short-answer";
    strong.textContent = short;
    const prefix = `${short} — `;
    box.append(strong, answer.answer.startsWith(prefix) ? answer.answer.slice(prefix.length) : answer.answer);
  } else {
    box.textContent = answer.answer;
  }
  box.classList.toggle("abstained", answer.abstained);
  const searched = answer.trace.follow_up;
  if (searched || answer.abstained) {
    const note = document.createElement("p");
    note.className = "searched";
    note.textContent = `${t("searched")}: ${searched ? searched.searched : turn.dataset.question}`;
    turn.append(note);
  }
  const list = document.createElement("ul");
  list.className = "citations";
  answer.citations.forEach((citation, i) => {
    const link = document.createElement("a");
    link.href = "#";
    link.dataset.testid = "citation";
    link.textContent = `[${i + 1}] ${citation.source}${citation.page ? ` ${t("page")} ${citation.page}` : ""}`;
    // The short answer's span is highlighted in the citation that holds it (a yes/no's span is its sentence).
    const holds = short && answer.short_citation === i + 1 && answer.short_start != null
      && citation.text.slice(answer.short_start, answer.short_end) === short;
    const shortSpan = holds ? [answer.short_start, answer.short_end] : null;
    link.addEventListener("click", (event) => { event.preventDefault(); showSource(citation, shortSpan); });
    const item = document.createElement("li");
    item.append(link);
    list.append(item);
  });
  turn.append(list);
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = t("trace");
  const pre = document.createElement("pre");
  pre.textContent = JSON.stringify(answer.trace, null, 2);
  details.append(summary, pre);
  turn.append(details);
}

async function ask(question) {
  const turn = document.createElement("article");
  turn.className = "turn";
  turn.dataset.question = question;
  const q = document.createElement("p");
  q.className = "q";
  q.textContent = question;
  const box = document.createElement("div");
  box.className = "answer";
  box.dataset.testid = "answer";
  box.textContent = t("searching");
  turn.append(q, box);
  $("turns").append(turn);
  const body = { question, history: conversation.slice(-5), collection: collection(), stream: true };
  conversation.push(question);
  const response = await api("/v1/query", { method: "POST", body: JSON.stringify(body) });
  if (!response.ok) {
    box.textContent = t("error", { message: await failure(response) });
    box.classList.add("error");
    return;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let streamed = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] || "null");
      if (event === "token") {
        streamed += data.text;
        box.textContent = streamed;  // the final answer replaces it when grounding rejects the tokens
        box.dataset.tokens = String(Number(box.dataset.tokens || 0) + 1);
      } else if (event === "answer") {
        render(turn, data);
      }
    }
  }
  turn.scrollIntoView({ block: "end" });
}

// --- sources --------------------------------------------------------------------------------------------
// Text with ``span`` ([start, end]) wrapped in a <mark> of ``className``; ``inner`` marks a span inside it.
function marked(source, span, className, inner = null) {
  const [start, end] = span;
  const mark = document.createElement("mark");
  if (className) mark.className = className;
  const within = inner && inner[0] >= start && inner[1] <= end;
  mark.append(...(within ? marked(source.slice(start, end), [inner[0] - start, inner[1] - start], "short")
    : [source.slice(start, end)]));
  return [source.slice(0, start), mark, source.slice(end)];
}

function showSource(citation, shortSpan = null) {
  openCitation = citation;
  $("source-title").textContent = t("sourceTitle", { source: citation.source, page: citation.page ?? "–" });
  const text = $("source-text");
  text.replaceChildren();
  const start = citation.quote_start, end = citation.quote_end;
  if (start != null && end != null && end > start) {
    // The quoted sentence, and the short answer inside it (a <mark class="short"> in the quote's <mark>).
    text.append(...marked(citation.text, [start, end], "quote", shortSpan));
  } else if (shortSpan) {
    text.append(...marked(citation.text, shortSpan, "short"));
  } else {
    text.textContent = citation.text;
  }
  $("open-file").hidden = !citation.source.toLowerCase().endsWith(".pdf");
  $("source").hidden = false;
  document.querySelector("main").classList.add("with-source");
  (text.querySelector("mark") || text).scrollIntoView({ block: "center" });
}

async function openFile() {
  // The file is fetched with the key (a plain link could not send it) and opened at the cited page.
  const citation = openCitation;
  const docId = citation.chunk_id.split("-")[0];
  const query = collection() ? `?collection=${encodeURIComponent(collection())}` : "";
  const response = await api(`/v1/documents/${docId}/file${query}`);
  if (!response.ok) { alert(await failure(response)); return; }
  const url = URL.createObjectURL(await response.blob());
  window.open(`${url}#page=${citation.page || 1}`, "_blank");
}

// --- documents ------------------------------------------------------------------------------------------
async function loadDocuments() {
  const query = collection() ? `?collection=${encodeURIComponent(collection())}` : "";
  const response = await api(`/v1/documents${query}`);
  if (!response.ok) return;
  const rows = (await response.json()).data.map((doc) => {
    const row = document.createElement("tr");
    row.dataset.testid = "document";
    [doc.source, doc.pages, doc.chunks, new Date(doc.ingested_at * 1000).toLocaleString(LANG)].forEach((v) => {
      const cell = document.createElement("td");
      cell.textContent = v;
      row.append(cell);
    });
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = t("remove");
    remove.setAttribute("aria-label", `${t("remove")} ${doc.source}`);
    remove.addEventListener("click", async () => {
      if (!confirm(t("confirmDelete", { name: doc.source }))) return;
      await api(`/v1/documents/${doc.id}${query}`, { method: "DELETE" });
      loadDocuments();
    });
    const cell = document.createElement("td");
    cell.append(remove);
    row.append(cell);
    return row;
  });
  $("doc-rows").replaceChildren(...rows);
}

function log(message) {
  const item = document.createElement("li");
  item.textContent = message;
  $("upload-log").append(item);
  return item;
}

function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

// What a job reports (GET /v1/ingest/jobs/{id}): files and pages done of the total, pages/s, time left.
function progressText(job) {
  const parts = [];
  if (job.files_total > 1) parts.push(t("filesDone", { done: job.files_done, total: job.files_total }));
  if (job.pages_total > 0) parts.push(t("pagesDone", { done: job.pages_done, total: job.pages_total }));
  if (job.pages_done > 0) parts.push(t("rate", { rate: job.pages_per_second.toFixed(1) }));
  if (job.eta_seconds != null && job.files_done < job.files_total) {
    parts.push(t("eta", { time: duration(job.eta_seconds) }));
  }
  return parts.join(" · ");
}

// A bar per upload: pages (or files) done of the total once the job reports some, moving until then.
function showProgress(line, name, job = null) {
  let bar = line.querySelector("progress");
  if (!bar) {
    bar = document.createElement("progress");
    bar.dataset.testid = "upload-progress";
    bar.setAttribute("aria-label", t("uploading", { name }));
    const note = document.createElement("span");
    note.className = "progress-note";
    line.append(" ", bar, " ", note);
  }
  const [done, total] = job && job.pages_total > 0 ? [job.pages_done, job.pages_total]
    : job ? [job.files_done, job.files_total] : [0, 0];
  if (done > 0 && total > 0) {
    bar.max = total;
    bar.value = done;
  } else {
    bar.removeAttribute("value");  // indeterminate: nothing done yet to measure by
  }
  line.querySelector(".progress-note").textContent = job ? progressText(job) : "";
}

async function waitForJob(url, onUpdate) {
  for (;;) {
    await new Promise((done) => setTimeout(done, 1000));
    const job = await (await api(url.replace(BASE, ""))).json();
    if (job.state === "done" || job.state === "failed") return job;
    onUpdate(job);
  }
}

async function upload(files) {
  const query = collection() ? `?collection=${encodeURIComponent(collection())}` : "";
  for (const file of files) {
    const line = log(t("uploading", { name: file.name }));
    showProgress(line, file.name);  // replaced by the outcome below
    const form = new FormData();
    form.append("file", file);
    const response = await api(`/v1/ingest/file${query}`, { method: "POST", body: form });
    let result;
    if (response.status === 202) {
      const url = (await response.json()).status_url;
      const job = await waitForJob(url, (running) => showProgress(line, file.name, running));
      result = job.result || { failed: [{ reason: job.error }] };
    } else if (response.ok) {
      result = await response.json();
    } else {
      line.textContent = t("failed", { name: file.name, reason: await failure(response) });
      continue;
    }
    if (result.failed && result.failed.length) {
      line.textContent = t("failed", { name: file.name, reason: result.failed[0].reason });
    } else if (result.ingested && result.ingested.length) {
      line.textContent = t("ingested", { name: file.name, chunks: result.chunks });
    } else {
      line.textContent = t("unchanged", { name: file.name });
    }
  }
  loadDocuments();
}

// --- wiring ---------------------------------------------------------------------------------------------
function show(view) {
  $("ask-view").hidden = view !== "ask";
  $("docs-view").hidden = view !== "docs";
  if (view === "docs") loadDocuments();
  else $("question").focus();
}

document.addEventListener("DOMContentLoaded", async () => {
  translate();
  $("ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const question = $("question").value.trim();
    if (!question) return;
    $("question").value = "";
    ask(question);
  });
  $("show-ask").addEventListener("click", () => show("ask"));
  $("show-docs").addEventListener("click", () => show("docs"));
  $("new-conversation").addEventListener("click", () => { conversation = []; $("turns").replaceChildren(); });
  $("collection").addEventListener("change", () => { conversation = []; loadDocuments(); });
  $("open-file").addEventListener("click", openFile);
  $("close-source").addEventListener("click", () => {
    $("source").hidden = true;
    document.querySelector("main").classList.remove("with-source");
  });
  const drop = $("drop");
  drop.addEventListener("click", () => $("files").click());
  drop.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") $("files").click(); });
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    upload(event.dataTransfer.files);
  });
  $("files").addEventListener("change", (event) => upload(event.target.files));
  await loadCollections();
  $("question").focus();
});
