// figsearch web page: a query panel (drawing, crop, words, ranking, filters), a grid of hits,
// and a figure view with its reference signs marked and the sentences that explain them.
// Plain ES module, no build step; every text from the server goes in through textContent.

const $ = (id) => document.getElementById(id);
const API = "api";

const state = {
  file: null,          // File/Blob uploaded as the query drawing
  fileName: "",
  figure: null,        // {id, patent, label} when the query is a figure of the collection
  crop: null,          // [x0, y0, x1, y1] as fractions of the drawing
  offset: 0,
  hits: [],
  total: 0,
  lastQueryPatent: null,
  openIndex: -1,       // which hit the dialog shows
  busy: 0,
  maxUpload: 20 * 1024 * 1024,
};

// -- small DOM helper ------------------------------------------------------------------------
function h(tag, attrs = {}, ...children) {
  const svg = ["svg", "rect", "g", "title"].includes(tag);
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.setAttribute("class", v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function api(path, options = {}, withHeaders = false) {
  let response;
  try {
    response = await fetch(`${API}/${path}`, options);
  } catch (err) {
    throw new Error("The figsearch server cannot be reached. Is it still running?");
  }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.blob();
  if (response.status === 401) askForToken();
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `${response.status} ${response.statusText}`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return withHeaders ? { body, headers: response.headers } : body;
}

function setBusy(on) {
  state.busy += on ? 1 : -1;
  $("spinner").hidden = state.busy <= 0;
  $("search-btn").disabled = state.busy > 0;
  // the results shown are the last search's until the new one answers: dimmed meanwhile, and said so to a reader
  $("grid").classList.toggle("busy", state.busy > 0);
  $("grid").setAttribute("aria-busy", state.busy > 0 ? "true" : "false");
}

function showNotice(message, kind = "error") {
  const box = $("notice");
  box.textContent = message || "";
  box.className = `notice ${kind}`;
  box.hidden = !message;
}

// -- access token ----------------------------------------------------------------------------
// A server that others can reach needs its token. The page never stores it: it checks it once with
// a bearer request, then opens ./?token=..., which the server trades for an HttpOnly session
// cookie (sent with every request, the figure images' too) and a redirect that drops it from the URL.
function askForToken() {
  const dialog = $("token-dialog");
  if (dialog.open) return;
  $("token-error").hidden = true;
  dialog.showModal();
  $("token-input").focus();
}

async function submitToken(event) {
  event.preventDefault();
  const token = $("token-input").value.trim();
  if (!token) return;
  const error = $("token-error");
  try {
    const response = await fetch(`${API}/info`, { headers: { Authorization: `Bearer ${token}` } });
    if (response.status === 401) {
      error.textContent = "That is not this server's token.";
      error.hidden = false;
      return;
    }
  } catch (err) {
    error.textContent = "The figsearch server cannot be reached. Is it still running?";
    error.hidden = false;
    return;
  }
  const params = new URLSearchParams(location.search);
  params.set("token", token);
  location.replace(`./?${params}`);
}

function initToken() {
  $("token-form").addEventListener("submit", submitToken);
  // Esc must not leave the page half-open without its token
  $("token-dialog").addEventListener("cancel", (e) => e.preventDefault());
}

// -- collection info -------------------------------------------------------------------------
async function loadInfo() {
  try {
    const info = await api("info");
    const target = $("collection-info");
    target.replaceChildren();
    const add = (n, what) => n !== undefined && target.append(h("span", {}, h("b", {}, Number(n).toLocaleString()), ` ${what}`));
    add(info.patents, "patents");
    add(info.figures, "figures");
    // the lexical box starts as a word query without it would run: off in a collection in several languages
    if (info.lexical) $("lexical").checked = Boolean(info.lexical.by_default && info.lexical.present);
    if (info.limits) {
      state.maxUpload = info.limits.max_upload_bytes;
      $("format-hint").textContent = `PNG, JPEG, TIFF or PDF · up to ${Math.round(state.maxUpload / 1048576)} MB`;
    }
    document.body.dataset.ready = "1";
  } catch (err) {
    showNotice(err.message);
  }
}

// -- query drawing: drop, paste, choose ------------------------------------------------------
function setQueryFile(file, name) {
  if (!file) return;
  if (file.size > state.maxUpload) {
    showNotice(`${name || "The file"} is ${(file.size / 1048576).toFixed(1)} MB; the limit is ${Math.round(state.maxUpload / 1048576)} MB.`);
    return;
  }
  state.file = file;
  state.fileName = name || file.name || "pasted image";
  state.figure = null;
  state.crop = null;
  $("page-input").value = 1;
  $("page-field").hidden = true;
  showPreview();
  runSearch(0);
}

async function useFigureReference() {
  const reference = $("figure-ref").value.trim();
  if (!reference) return;
  try {
    const d = await api(`figures/${encodeURIComponent(reference)}`);
    $("figure-ref").value = "";
    setQueryFigure({ id: d.figure.figure_id, patent: d.figure.patent, label: d.figure.label });
    runSearch(0);
  } catch (err) {
    showNotice(err.message);  // "EP1667425A1 is a patent, not a figure: name one of its 17 figures, e.g. ..."
  }
}

function setQueryFigure(figure) {
  state.file = null;
  state.figure = figure;
  state.fileName = `${figure.patent} · ${figure.label || figure.id}`;
  state.crop = null;
  $("page-field").hidden = true;
  showPreview();
}

async function showPreview() {
  const img = $("preview-img");
  $("dropzone-empty").hidden = true;
  $("crop-stage").hidden = false;
  $("preview-tools").hidden = false;
  $("dropzone").classList.add("has-image");
  $("query-source").textContent = state.fileName;
  $("query-source").title = state.fileName;
  drawCrop();
  if (img.dataset.objectUrl) URL.revokeObjectURL(img.dataset.objectUrl);
  delete img.dataset.objectUrl;
  if (state.figure) {
    img.src = `${API}/figures/${encodeURIComponent(state.figure.id)}/image`;
    return;
  }
  const file = state.file;
  const browserShows = /^image\/(png|jpeg)$/.test(file.type);
  let blob = file;
  if (!browserShows) {
    // TIFF and PDF: let the server decode the page exactly as the search will see it
    try {
      setBusy(true);
      const form = new FormData();
      form.append("image", file, state.fileName);
      form.append("page", $("page-input").value || "1");
      const preview = await api("preview", { method: "POST", body: form }, true);
      blob = preview.body;
      const pages = Number(preview.headers.get("X-Page-Count") || 1);
      $("page-field").hidden = pages < 2;
      $("page-input").max = pages;
    } catch (err) {
      showNotice(err.message);
      return;
    } finally {
      setBusy(false);
    }
  }
  if (state.file !== file) return; // replaced meanwhile
  const url = URL.createObjectURL(blob);
  img.dataset.objectUrl = url;
  img.src = url;
}

function clearQueryImage() {
  history.replaceState(null, "", location.pathname + location.search);
  state.file = null;
  state.figure = null;
  state.crop = null;
  state.fileName = "";
  const img = $("preview-img");
  if (img.dataset.objectUrl) URL.revokeObjectURL(img.dataset.objectUrl);
  img.removeAttribute("src");
  $("dropzone-empty").hidden = false;
  $("crop-stage").hidden = true;
  $("preview-tools").hidden = true;
  $("dropzone").classList.remove("has-image");
  $("query-source").textContent = "";
  $("file-input").value = "";
}

function initDropzone() {
  const zone = $("dropzone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("dragover"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragover"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("dragover");
    const file = e.dataTransfer.files && e.dataTransfer.files[0];
    if (file) setQueryFile(file, file.name);
  });
  zone.addEventListener("click", (e) => {
    if (!state.file && !state.figure && !e.target.closest("label")) $("file-input").click();
  });
  zone.addEventListener("keydown", (e) => {
    if ((e.key === "Enter" || e.key === " ") && !state.file && !state.figure) { e.preventDefault(); $("file-input").click(); }
  });
  $("file-input").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (file) setQueryFile(file, file.name);
  });
  document.addEventListener("paste", (e) => {
    const items = [...(e.clipboardData ? e.clipboardData.items : [])];
    const item = items.find((i) => i.kind === "file");
    if (!item) return;
    e.preventDefault();
    const file = item.getAsFile();
    setQueryFile(file, file.name && file.name !== "image.png" ? file.name : "pasted image");
  });
  $("clear-image").addEventListener("click", clearQueryImage);
  $("clear-crop").addEventListener("click", () => { state.crop = null; drawCrop(); runSearch(0); });
  $("page-input").addEventListener("change", () => { state.crop = null; showPreview(); runSearch(0); });
}

// -- crop rectangle --------------------------------------------------------------------------
function drawCrop() {
  const box = $("crop-box");
  const c = state.crop;
  $("clear-crop").hidden = !c;
  $("crop-hint").textContent = c ? "Searching with the marked part." : "Drag on the drawing to use part of it.";
  if (!c) { box.hidden = true; return; }
  box.hidden = false;
  box.style.left = `${c[0] * 100}%`;
  box.style.top = `${c[1] * 100}%`;
  box.style.width = `${(c[2] - c[0]) * 100}%`;
  box.style.height = `${(c[3] - c[1]) * 100}%`;
}

function initCrop() {
  const stage = $("crop-stage");
  let start = null;
  const point = (e) => {
    const r = $("preview-img").getBoundingClientRect();
    return [Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)), Math.min(1, Math.max(0, (e.clientY - r.top) / r.height))];
  };
  stage.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    stage.setPointerCapture(e.pointerId);
    start = point(e);
    state.crop = [start[0], start[1], start[0], start[1]];
    drawCrop();
  });
  stage.addEventListener("pointermove", (e) => {
    if (!start) return;
    const p = point(e);
    state.crop = [Math.min(start[0], p[0]), Math.min(start[1], p[1]), Math.max(start[0], p[0]), Math.max(start[1], p[1])];
    drawCrop();
  });
  const finish = () => {
    if (!start) return;
    start = null;
    const c = state.crop;
    // a click or a sliver is not a crop
    if (!c || c[2] - c[0] < 0.03 || c[3] - c[1] < 0.03) state.crop = null;
    drawCrop();
    if (state.crop) runSearch(0);
  };
  stage.addEventListener("pointerup", finish);
  stage.addEventListener("pointercancel", finish);
}

// -- ranking controls and filters --------------------------------------------------------------
function initControls() {
  const weight = $("text-weight");
  const useWeight = $("use-weight");
  const sync = () => {
    $("weight-row").hidden = !useWeight.checked;
    $("mode-group").classList.toggle("disabled", useWeight.checked);
    $("text-weight-out").textContent = Number(weight.value).toFixed(2);
  };
  weight.addEventListener("input", sync);
  useWeight.addEventListener("change", sync);
  sync();
  const countFilters = () => {
    const n = ["date-from", "date-to", "office", "classification", "exclude-patents"].filter((id) => $(id).value.trim()).length + ($("exclude-own").checked ? 1 : 0);
    $("filter-count").hidden = n === 0;
    $("filter-count").textContent = n;
  };
  for (const id of ["date-from", "date-to", "office", "classification", "exclude-patents", "exclude-own"]) $(id).addEventListener("change", countFilters);
  // a typed figure reference is looked up first (the same names figsearch search --figure takes), then searched with
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); $("figure-ref").value.trim() ? useFigureReference() : runSearch(0); });
  $("per-page").addEventListener("change", () => { if (state.hits.length) runSearch(0); });
  $("prev-page").addEventListener("click", () => runSearch(Math.max(0, state.offset - perPage())));
  $("next-page").addEventListener("click", () => runSearch(state.offset + perPage()));
  $("download-csv").addEventListener("click", downloadCsv);
}

const perPage = () => Number($("per-page").value) || 24;

function buildForm(offset) {
  const form = new FormData();
  const text = $("text-input").value.trim();
  if (state.file) form.append("image", state.file, state.fileName || "query");
  if (state.figure) form.append("figure_id", state.figure.id);
  if (state.file && !$("page-field").hidden) form.append("page", $("page-input").value || "1");
  if (text) form.append("text", text);
  if ($("use-weight").checked) form.append("text_weight", $("text-weight").value);
  const mode = document.querySelector("input[name=mode]:checked").value;
  form.append("mode", mode);
  form.append("k", perPage());
  form.append("offset", offset);
  if (state.crop) form.append("crop", state.crop.map((v) => v.toFixed(4)).join(","));
  const put = (field, id) => { const v = $(id).value.trim(); if (v) form.append(field, v); };
  put("date_from", "date-from");
  put("date_to", "date-to");
  put("office", "office");
  put("classification", "classification");
  put("exclude_patents", "exclude-patents");
  if ($("exclude-own").checked) form.append("exclude_query_patent", "true");
  if (state.file && $("all-turns").checked) form.append("all_turns", "true");
  if (text) form.append("lexical", $("lexical").checked ? "true" : "false");  // the box says it either way
  return { form, text, mode };
}

// -- search and results ----------------------------------------------------------------------
let searchSeq = 0;

async function runSearch(offset) {
  const { form, text } = buildForm(offset);
  if (!state.file && !state.figure && !text) {
    showNotice("Give a drawing or some words to search with.", "info");
    return;
  }
  const seq = ++searchSeq;
  showNotice("");
  setBusy(true);
  try {
    const result = await api("search", { method: "POST", body: form });
    if (seq !== searchSeq) return; // a newer search has started
    state.offset = result.offset;
    state.hits = result.hits;
    state.total = result.total;
    state.lastQueryPatent = state.figure ? state.figure.patent : null;
    renderResults(result);
    rememberInUrl(offset);
    // one column on a narrow window: the results start below the whole query panel, out of sight
    if (window.matchMedia("(max-width: 980px)").matches) $("results-title").scrollIntoView({ block: "start" });
    $("results-notes").textContent = (result.notes || []).join(" · ");
    $("results-notes").hidden = !(result.notes && result.notes.length);
  } catch (err) {
    if (seq === searchSeq) showNotice(err.message);
  } finally {
    setBusy(false);
  }
}

// the page of results shown, as the server writes it for a report (format=csv: search/export.py), saved as a file
async function downloadCsv() {
  const { form } = buildForm(state.offset);
  form.append("format", "csv");
  const button = $("download-csv");
  button.disabled = true;
  try {
    const { body, headers } = await api("search", { method: "POST", body: form }, true);
    const name = /filename="([^"]+)"/.exec(headers.get("content-disposition") || "");
    const link = h("a", { href: URL.createObjectURL(body), download: name ? name[1] : "figsearch.csv" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (err) {
    showNotice(err.message);
  } finally {
    button.disabled = false;
  }
}

// a search without an upload is kept in the address, so it can be bookmarked and shared
function rememberInUrl(offset) {
  if (state.file) { history.replaceState(null, "", location.pathname + location.search); return; }
  const { form } = buildForm(offset);
  const params = new URLSearchParams();
  for (const [k, v] of form.entries()) if (k !== "k" && !(k === "offset" && v === "0") && !(k === "mode" && v === "auto")) params.append(k, v);
  history.replaceState(null, "", `#${params}`);
}

async function restoreFromUrl() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (![...params.keys()].length) return;
  const set = (id, key) => { if (params.has(key)) $(id).value = params.get(key); };
  set("text-input", "text");
  set("date-from", "date_from");
  set("date-to", "date_to");
  set("office", "office");
  set("classification", "classification");
  set("exclude-patents", "exclude_patents");
  const mode = document.querySelector(`input[name=mode][value="${CSS.escape(params.get("mode") || "auto")}"]`);
  if (mode) mode.checked = true;
  if (params.has("text_weight")) { $("use-weight").checked = true; $("text-weight").value = params.get("text_weight"); $("use-weight").dispatchEvent(new Event("change")); }
  $("exclude-own").checked = params.get("exclude_query_patent") === "true";
  $("exclude-own").dispatchEvent(new Event("change"));  // the Filters badge counts what the address restored
  if (params.has("figure_id")) {
    const id = params.get("figure_id");
    try {
      const d = await api(`figures/${encodeURIComponent(id)}`);
      setQueryFigure({ id, patent: d.figure.patent, label: d.figure.label });
    } catch (err) { showNotice(err.message); return; }
  }
  if (params.has("crop")) { state.crop = params.get("crop").split(",").map(Number); drawCrop(); }
  runSearch(Number(params.get("offset") || 0));
}

function describeQuery(result) {
  const parts = [];
  if (result.query.image) parts.push("drawing");
  if (result.query.figure_id) parts.push(result.query.figure_id);
  if (result.query.text) parts.push(`“${result.query.text}”`);
  return parts.join(" + ");
}

function renderResults(result) {
  $("empty-state").hidden = true;
  const grid = $("grid");
  grid.replaceChildren();
  const from = result.total ? result.offset + 1 : 0;
  const to = result.offset + result.hits.length;
  $("results-title").textContent = result.total ? `${result.total.toLocaleString()} similar figure${result.total === 1 ? "" : "s"}` : "No matching figures";
  const meta = $("results-meta");
  meta.replaceChildren(`Showing ${from}–${to} · ${describeQuery(result)} · ${result.query.text_weight !== null && result.query.text_weight !== undefined ? `text weight ${result.query.text_weight}` : result.mode} · ${Math.round(result.took_ms)} ms`);
  if (result.query.crop) meta.append(h("span", { class: "chip-inline" }, "cropped"));
  if ((result.query.words || []).length) meta.append(" · words read in the drawing: ", h("span", { class: "chip-inline" }, result.query.words.join(" ")));
  // cosines and fused means lie in [0, 1]; auto's weighted z-scores do not ("chair" 0.85, a rarer word 5.68): the
  // bars are relative to the page's best score where that is above 1, so they still tell the hits apart
  state.scoreScale = Math.max(1, ...result.hits.map((hit) => Number(hit.score) || 0));
  result.hits.forEach((hit, i) => grid.append(hitCard(hit, i)));
  $("download-csv").hidden = !result.hits.length;
  const pager = $("pager");
  pager.hidden = result.total <= result.k;
  $("prev-page").disabled = result.offset === 0;
  $("next-page").disabled = result.next_offset === null || result.next_offset === undefined;
  // no "of N": total counts the candidates the page's lists held, and a later page searches longer lists
  $("page-info").textContent = `Page ${Math.floor(result.offset / result.k) + 1}`;
  if (!result.hits.length) {
    grid.append(h("p", { class: "empty-note" }, "Nothing passed the filters. Loosen them, or try another mode."));
  }
}

// what to call a figure whose sheet has no label read: where it is, in words ("p004" and "D00002" said
// nothing to a reader): "USD0907293S1-D00002" -> "sheet 2", "USD0910780S1-p004" -> "PDF page 4",
// "USD0534748S1-USD0534748" (a design's one drawing) -> "drawing"; else the image's own key
function figureKey(figureId, patent) {
  const key = figureId.startsWith(`${patent}-`) ? figureId.slice(patent.length + 1) : figureId;
  let m = /^D(\d{5})$/.exec(key);
  if (m) return Number(m[1]) ? `sheet ${Number(m[1])}` : "front page";
  m = /^p(\d{3,4})$/.exec(key);
  if (m) return `PDF page ${Number(m[1])}`;
  if (patent.startsWith(key)) return "drawing";
  return key;
}

function fmtScore(v) { return Number(v).toFixed(3); }

function hitCard(hit, index) {
  const own = state.lastQueryPatent && hit.patent === state.lastQueryPatent;
  const detail = Object.entries(hit.scores || {}).map(([k, v]) => `${k} ${fmtScore(v)}`).join(" · ");
  const width = Math.max(2, Math.min(100, (hit.score / (state.scoreScale || 1)) * 100));
  return h("article", { class: `hit${own ? " same-patent" : ""}`, dataset: { figureId: hit.figure_id, patent: hit.patent } },
    h("button", { type: "button", class: "hit-thumb", title: "Open figure", onclick: () => openFigure(index) },
      h("img", { src: hit.thumbnail_url, alt: `${hit.patent} ${hit.label || ""}`, loading: "lazy" }),
      h("span", { class: "rank" }, `#${hit.rank}`),
      own ? h("span", { class: "own" }, "same patent") : null),
    h("div", { class: "hit-body" },
      h("div", { class: "hit-pn" }, hit.patent),
      h("div", { class: "hit-label" }, hit.label || figureKey(hit.figure_id, hit.patent)),
      h("div", { class: "hit-title", title: hit.title || "" }, hit.title || ""),
      h("div", { class: "score", title: detail || "score" },
        h("div", { class: "score-bar" }, h("i", { style: `width:${width}%` })),
        h("span", { class: "score-val" }, fmtScore(hit.score))),
      h("div", { class: "hit-links" },
        h("a", { href: hit.links.espacenet, target: "_blank", rel: "noopener" }, "Espacenet"),
        h("a", { href: hit.links.google_patents, target: "_blank", rel: "noopener" }, "Google Patents"))));
}

// -- figure dialog ---------------------------------------------------------------------------
let figureSeq = 0;

function openFigure(index) {
  state.openIndex = index;
  const hit = state.hits[index];
  showFigure(hit.figure_id);
}

async function showFigure(figureId) {
  const dialog = $("figure-dialog");
  const seq = ++figureSeq;
  $("fd-prev").disabled = state.openIndex <= 0;
  $("fd-next").disabled = state.openIndex < 0 || state.openIndex >= state.hits.length - 1;
  if (!dialog.open) dialog.showModal();
  dialog.dataset.loaded = "";
  let details;
  try {
    details = await api(`figures/${encodeURIComponent(figureId)}`);
  } catch (err) {
    $("fd-title").textContent = "Figure not available";
    $("fd-eyebrow").textContent = figureId;
    $("fd-sentences").replaceChildren(h("li", {}, err.message));
    return;
  }
  if (seq !== figureSeq) return;
  renderFigure(details);
  dialog.dataset.loaded = "1";
  loadFilmstrip(details.figure, seq);
}

function renderFigure(d) {
  const f = d.figure;
  $("fd-eyebrow").textContent = `${f.patent} · ${f.label || figureKey(f.figure_id, f.patent)}`;
  $("fd-title").textContent = d.patent_title || f.patent;
  const dialog = $("figure-dialog");
  dialog.dataset.figureId = f.figure_id;
  $("fd-espacenet").href = d.links.espacenet;
  $("fd-google").href = d.links.google_patents;
  $("fd-more").onclick = () => moreLikeThis(f);

  const img = $("fd-img");
  const svg = $("fd-signs");
  svg.replaceChildren();
  const place = () => {
    const w = f.width || img.naturalWidth, hgt = f.height || img.naturalHeight;
    svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
    $("fd-size").textContent = `${img.naturalWidth} × ${img.naturalHeight} px`;
  };
  img.onload = place;
  img.alt = `${f.patent} ${f.label || ""}`;
  img.src = f.image_url;
  if (img.complete && img.naturalWidth) place();
  for (const s of d.reference_signs) {
    if (!s.box) continue;
    const [x0, y0, x1, y1] = s.box;
    const pad = 3;
    svg.append(h("rect", {
      x: x0 - pad, y: y0 - pad, width: x1 - x0 + 2 * pad, height: y1 - y0 + 2 * pad, rx: 3,
      class: s.kind === "figure_label" ? "label-box" : "sign-box", dataset: { sign: s.text },
    }, h("title", {}, s.text)));
  }
  svg.hidden = !$("fd-show-signs").checked;

  // signs with their glossary terms; a sign read in the drawing but never named in the text stays grey
  const terms = new Map(d.glossary.map((g) => [g.sign, g.term]));
  const numerals = [...new Set(d.reference_signs.filter((s) => s.kind !== "figure_label").map((s) => s.text))];
  $("fd-sign-count").textContent = numerals.length ? `(${numerals.length})` : "";
  const chips = $("fd-chips");
  chips.replaceChildren();
  for (const sign of numerals) {
    chips.append(h("span", { class: `chip${terms.has(sign) ? "" : " unmatched"}`, dataset: { sign },
      onmouseenter: () => highlight(sign, true), onmouseleave: () => highlight(sign, false) },
      h("b", {}, sign), terms.get(sign) || "not named in the text"));
  }
  if (!numerals.length) chips.append(h("span", { class: "empty-note" }, "No reference signs were read in this figure."));

  // the words printed in the drawing (box labels, flowchart steps), one text line per phrase
  const lines = new Map();
  for (const w of d.words || []) lines.set(w.line, [...(lines.get(w.line) || []), w.text]);
  const phrases = [...new Set([...lines.values()].map((ws) => ws.join(" ")))];
  $("fd-words").textContent = phrases.join(" · ");
  $("fd-words").hidden = $("fd-words-head").hidden = !phrases.length;

  const list = $("fd-sentences");
  list.replaceChildren();
  $("fd-sentence-count").textContent = d.sentences.length ? `(${d.sentences.length})` : "";
  const reasons = { sign: "mentions a sign in the drawing", label: "names this figure",
    brief_description: "brief description of the drawings", title: "patent title" };
  for (const s of d.sentences) {
    const li = h("li", { dataset: { signs: (s.signs || []).join(" ") },
      onmouseenter: () => s.signs.forEach((x) => highlight(x, true)), onmouseleave: () => s.signs.forEach((x) => highlight(x, false)) },
      markSigns(s.text, s.signs || []),
      // the sentence's language, where the API gives one (EP documents in German or French)
      h("span", { class: "sentence-meta" }, (s.lang ? `${s.lang.toUpperCase()} · ` : "") + (reasons[s.reason] || s.reason)));
    list.append(li);
  }
  if (!d.sentences.length) list.append(h("li", { class: "empty-note" }, "No description sentences are linked to this figure."));

  const meta = $("fd-meta");
  meta.replaceChildren();
  const row = (k, v) => v && meta.append(h("dt", {}, k), h("dd", {}, v));
  row("Figure", f.description || f.label);
  row("Patent", f.patent);
}

function markSigns(text, signs) {
  const wanted = signs.filter(Boolean).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  if (!wanted.length) return [text];
  const re = new RegExp(`(^|[^\\w])(${wanted.join("|")})(?=[^\\w]|$)`, "g");
  const out = [];
  let last = 0;
  for (const m of text.matchAll(re)) {
    const start = m.index + m[1].length;
    out.push(text.slice(last, start), h("mark", {}, m[2]));
    last = start + m[2].length;
  }
  out.push(text.slice(last));
  return out;
}

function highlight(sign, on) {
  document.querySelectorAll(`#fd-signs rect[data-sign="${CSS.escape(sign)}"]`).forEach((r) => r.classList.toggle("hot", on));
  document.querySelectorAll(`#fd-chips .chip[data-sign="${CSS.escape(sign)}"]`).forEach((c) => c.classList.toggle("hot", on));
  document.querySelectorAll("#fd-sentences li").forEach((li) => {
    if ((li.dataset.signs || "").split(" ").includes(sign)) li.classList.toggle("hot", on);
  });
}

async function loadFilmstrip(figure, seq) {
  const strip = $("fd-strip");
  strip.replaceChildren();
  try {
    const p = await api(`patents/${encodeURIComponent(figure.patent)}`);
    if (seq !== figureSeq) return;
    const row = (k, v) => v && $("fd-meta").append(h("dt", {}, k), h("dd", {}, v));
    row("Published", p.patent.publication_date);
    row("Classes", p.patent.classifications.map((c) => `${c.scheme} ${c.code}`).join(", "));
    row("Abstract", p.patent.abstract);
    if (p.figures.length > 1) row("Figures", `${p.figures.length} (below the drawing)`);
    if (p.figures.length < 2) return;
    for (const other of p.figures) {
      strip.append(h("button", { type: "button", class: other.figure_id === figure.figure_id ? "current" : "", title: other.label || other.figure_id,
        dataset: { figureId: other.figure_id },
        onclick: () => { state.openIndex = state.hits.findIndex((x) => x.figure_id === other.figure_id); showFigure(other.figure_id); } },
        h("img", { src: other.thumbnail_url, alt: other.label || other.figure_id, loading: "lazy" })));
    }
  } catch (err) { /* the strip is a convenience; the figure itself is shown */ }
}

function moreLikeThis(f) {
  $("figure-dialog").close();
  setQueryFigure({ id: f.figure_id, patent: f.patent, label: f.label });
  runSearch(0);
  window.scrollTo({ top: 0, behavior: "smooth" });
}

function initDialog() {
  const dialog = $("figure-dialog");
  $("fd-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (e) => { if (e.target === dialog) dialog.close(); });
  $("fd-prev").addEventListener("click", () => state.openIndex > 0 && openFigure(state.openIndex - 1));
  $("fd-next").addEventListener("click", () => state.openIndex < state.hits.length - 1 && openFigure(state.openIndex + 1));
  dialog.addEventListener("keydown", (e) => {
    if (e.target.closest && e.target.closest("input")) return;
    if (e.key === "ArrowLeft") $("fd-prev").click();
    if (e.key === "ArrowRight") $("fd-next").click();
  });
  $("fd-show-signs").addEventListener("change", (e) => { $("fd-signs").hidden = !e.target.checked; });
}

initToken();
initDropzone();
initCrop();
initControls();
initDialog();
loadInfo().then(restoreFromUrl);
