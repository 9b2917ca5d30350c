// darkmirror report.html: the sample browser and the side-by-side view.
//
// Written into the page by darkmirror.report.html.page; no library, no request. The rows
// come packed by darkmirror.report.html.samples (gzip + base64 of column arrays, the answers
// in chunks decoded when first shown); every label and reason is decided there, in Python,
// and only shown here. User text (answers, prompts, scores) is always inserted as text
// nodes, never as HTML.
"use strict";
(() => {
  const page = (window.darkmirrorPage = { timings: {}, ready: false, lastFilter: null });
  const PAGE_SIZE = 100;
  const DIMENSIONS = ["model", "group", "seed", "kind", "question", "paraphrase", "label", "domain"];
  const fmtInt = (n) => n.toLocaleString("en-US");

  // Build an element; string children become text nodes, so no text is parsed as HTML.
  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function debounce(fn, ms) {
    let timer = 0;
    return () => {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function bytesOf(b64) {
    if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(b64);
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function decode(b64) {
    const stream = new Blob([bytesOf(b64)]).stream().pipeThrough(new DecompressionStream("gzip"));
    return JSON.parse(await new Response(stream).text());
  }

  // ---- the answers: one chunk of rows at a time, decoded when first needed -------------
  function answerStore(elements, chunkRows) {
    const data = new Array(elements.length);
    const pending = new Array(elements.length);
    let all = null;
    const load = (k) => {
      if (!pending[k]) {
        pending[k] = decode(elements[k].textContent.trim()).then((chunk) => {
          elements[k].textContent = ""; // decoded: the page's copy is no longer needed
          data[k] = chunk;
          return chunk;
        });
      }
      return pending[k];
    };
    const chunkOf = (i) => Math.floor(i / chunkRows);
    return {
      chunkRows,
      data,
      // Resolves once the answers of these rows can be read.
      rows(rows) {
        const ks = new Set();
        for (const i of rows) ks.add(chunkOf(i));
        return Promise.all([...ks].map(load));
      },
      // Every chunk, one after the other, so the page stays responsive meanwhile.
      all() {
        if (all === null) {
          all = (async () => {
            for (let k = 0; k < elements.length; k++) await load(k);
            page.timings.allAnswers = performance.now();
          })();
        }
        return all;
      },
      answer: (i) => data[chunkOf(i)].answer[i % chunkRows],
      extension: (i) => data[chunkOf(i)].extension[i % chunkRows],
    };
  }

  // ---- the packed rows as typed arrays -------------------------------------------------
  function load(D, chunks) {
    const S = { D, n: D.n, text: D.text, dims: {}, answers: answerStore(chunks, D.chunk_rows) };
    for (const d of DIMENSIONS) {
      S.dims[d] = { values: D.dims[d].values, codes: Int32Array.from(D.dims[d].codes) };
    }
    for (const k of ["conversation", "sample", "reason", "qtype"]) {
      S[k] = Int32Array.from(D[k]);
    }
    S.scoreOffsets = Int32Array.from(D.score_offsets);
    S.scoreIds = Int32Array.from(D.score_ids);
    const convQuestion = Int32Array.from(D.conversations, (c) => D.messages[c[c.length - 1]][1]);
    S.questionText = new Int32Array(S.n);
    for (let i = 0; i < S.n; i++) S.questionText[i] = convQuestion[S.conversation[i]];
    S.metrics = D.metrics.map((m) => ({
      key: m.key,
      values: Float64Array.from(m.values, (v) => (v === null ? NaN : v)),
    }));
    const judge = (metric) => S.metrics.find((m) => m.key === metric);
    S.aligned = judge("aligned");
    S.coherent = judge("coherent");
    return S;
  }

  const show = (v) => (v === null || v === undefined ? "(none)" : String(v));
  const num = (x) => (Number.isNaN(x) ? "none" : String(parseFloat(x.toPrecision(6))));
  const textOf = (S, id) => (id < 0 ? "" : S.text[id]);
  const dimValue = (S, d, i) => S.dims[d].values[S.dims[d].codes[i]];
  const labelOf = (S, i) => dimValue(S, "label", i);

  function badge(label) {
    return h("span", { class: `dm-label dm-label-${label.replace(/\s+/g, "-")}`, text: label });
  }

  function reasonText(S, i) {
    const pick = (m) => (m ? num(m.values[i]) : "none");
    return S.D.reasons[S.reason[i]]
      .replaceAll("{aligned}", pick(S.aligned))
      .replaceAll("{coherent}", pick(S.coherent));
  }

  // ---- free-text search: every answer and question lowercased, once --------------------
  function searchIndex(S) {
    const questions = new Map();
    for (let i = 0; i < S.n; i++) {
      const id = S.questionText[i];
      if (!questions.has(id)) questions.set(id, S.text[id].toLowerCase());
    }
    const lower = [];
    const index = { done: false };
    index.ready = (async () => {
      await S.answers.all();
      for (let k = 0; k < S.answers.data.length; k++) {
        lower.push(S.answers.data[k].answer.map((a) => a.toLowerCase()));
        if (k % 8 === 7) await new Promise((resolve) => setTimeout(resolve, 0));
      }
      index.done = true;
      page.timings.searchIndex = performance.now();
    })();
    // Per row, whether its answer or its question holds ``query`` (lowercase).
    index.hits = (query) => {
      const inQuestion = new Map();
      for (const [id, text] of questions) inQuestion.set(id, text.includes(query));
      const hit = new Uint8Array(S.n);
      const R = S.answers.chunkRows;
      for (let k = 0; k < lower.length; k++) {
        const answers = lower[k];
        for (let j = 0; j < answers.length; j++) {
          const i = k * R + j;
          hit[i] = answers[j].includes(query) || inQuestion.get(S.questionText[i]) ? 1 : 0;
        }
      }
      return hit;
    };
    return index;
  }

  // ---- the sample browser --------------------------------------------------------------
  function browser(S, root) {
    const state = { dims: {}, text: "", ranges: {} };
    let results = new Int32Array(0);
    let pageIndex = 0;
    let index = null;
    const controls = {};

    const filters = h("form", { class: "dm-filters", onsubmit: (e) => e.preventDefault() });
    for (const d of DIMENSIONS) {
      const values = S.dims[d].values;
      const select = h("select", { name: d, "data-dim": d }, h("option", { value: "-1" }, `all (${values.length})`));
      values.forEach((v, code) => select.append(h("option", { value: String(code) }, show(v))));
      select.addEventListener("change", () => {
        state.dims[d] = Number(select.value);
        apply();
      });
      controls[d] = select;
      filters.append(h("label", { class: d === "question" ? "dm-wide" : null }, d, select));
    }
    const search = h("input", { type: "search", name: "text", placeholder: "words in the answer or question" });
    search.addEventListener(
      "input",
      debounce(() => {
        state.text = search.value.trim().toLowerCase();
        apply();
      }, 200),
    );
    filters.append(h("label", { class: "dm-wide" }, "text", search));
    const ranges = h("div", { class: "dm-ranges" }, S.metrics.length ? "score ranges:" : null);
    for (const m of S.metrics) {
      const lo = h("input", { type: "number", step: "any", placeholder: "min", "data-range": m.key, "data-bound": "min" });
      const hi = h("input", { type: "number", step: "any", placeholder: "max", "data-range": m.key, "data-bound": "max" });
      const update = debounce(() => {
        const bound = (el) => (el.value === "" ? null : Number(el.value));
        state.ranges[m.key] = [bound(lo), bound(hi)];
        apply();
      }, 200);
      lo.addEventListener("input", update);
      hi.addEventListener("input", update);
      controls[`range:${m.key}`] = [lo, hi];
      ranges.append(h("span", { class: "dm-range" }, m.key, lo, "–", hi));
    }
    filters.append(ranges);
    const sideButton = h("button", { type: "button", text: "side by side for this question" });
    filters.append(
      h(
        "div",
        { class: "dm-actions" },
        h("button", { type: "button", text: "reset filters", onclick: () => setFilter({}) }),
        sideButton,
      ),
    );

    const count = h("strong", { id: "dm-count", "data-n": "0" });
    const chips = h("span", { class: "dm-chips" });
    const labelValues = S.dims.label.values;
    const chipButtons = labelValues.map((label, code) => {
      const n = h("span", { "data-n": "0" });
      const b = h("button", { type: "button", class: "dm-chip", "data-label": label, "aria-pressed": "false" }, badge(label), " ", n);
      b.addEventListener("click", () => {
        state.dims.label = state.dims.label === code ? -1 : code;
        controls.label.value = String(state.dims.label ?? -1);
        apply();
      });
      chips.append(b);
      return { b, n };
    });
    const pagerText = h("span");
    const prev = h("button", { type: "button", text: "‹ previous" });
    const next = h("button", { type: "button", text: "next ›" });
    prev.addEventListener("click", () => {
      pageIndex -= 1;
      render();
    });
    next.addEventListener("click", () => {
      pageIndex += 1;
      render();
    });
    const countbar = h(
      "div",
      { class: "dm-countbar" },
      h("span", { class: "dm-count" }, count, ` of ${fmtInt(S.n)} answers match`),
      chips,
      h("span", { class: "dm-pager" }, prev, pagerText, next),
    );
    const list = h("ol", { class: "dm-results", id: "dm-results" });
    root.replaceChildren(filters, countbar, list);
    let applying = 0;
    let rendering = 0;

    // Filter, count, then show the first page of results. A newer call supersedes an
    // older one still waiting for answers to decode.
    async function apply() {
      const mine = ++applying;
      page.busy = true;
      const t = performance.now();
      let hit = null;
      if (state.text) {
        if (index === null) index = searchIndex(S);
        if (!index.done) {
          pagerText.textContent = "reading every answer for the search…";
          await index.ready;
          if (mine !== applying) return;
        }
        hit = index.hits(state.text);
      }
      const checks = [];
      for (const d of DIMENSIONS) {
        const v = state.dims[d] ?? -1;
        if (d !== "label" && v >= 0) checks.push([S.dims[d].codes, v]);
      }
      const bounds = [];
      for (const m of S.metrics) {
        const r = state.ranges[m.key];
        if (r && (r[0] !== null || r[1] !== null)) bounds.push([m.values, r[0] ?? -Infinity, r[1] ?? Infinity]);
      }
      const labels = S.dims.label.codes;
      const want = state.dims.label ?? -1;
      const perLabel = new Int32Array(labelValues.length);
      const out = new Int32Array(S.n);
      let m = 0;
      const nc = checks.length;
      const nb = bounds.length;
      // Answers with no score of a ranged metric are out: a range asks for a score.
      rows: for (let i = 0; i < S.n; i++) {
        for (let k = 0; k < nc; k++) if (checks[k][0][i] !== checks[k][1]) continue rows;
        for (let k = 0; k < nb; k++) {
          const x = bounds[k][0][i];
          if (!(x >= bounds[k][1] && x <= bounds[k][2])) continue rows;
        }
        if (hit !== null && hit[i] === 0) continue;
        const l = labels[i];
        perLabel[l] += 1; // per label: every filter but the label's own
        if (want >= 0 && l !== want) continue;
        out[m++] = i;
      }
      results = out.subarray(0, m);
      pageIndex = 0;
      count.textContent = fmtInt(m);
      count.dataset.n = String(m);
      chipButtons.forEach(({ b, n }, code) => {
        n.textContent = fmtInt(perLabel[code]);
        n.dataset.n = String(perLabel[code]);
        b.setAttribute("aria-pressed", String(want === code));
      });
      await render(); // a page turn meanwhile renders these results too
      if (mine !== applying) return;
      page.lastFilter = { ms: performance.now() - t, count: m };
      page.applied = (page.applied || 0) + 1;
      page.busy = false;
    }

    // Show the current page of results once its answers are decoded; false when a newer
    // render took over meanwhile.
    async function render() {
      const mine = ++rendering;
      const pages = Math.max(1, Math.ceil(results.length / PAGE_SIZE));
      pageIndex = Math.min(Math.max(0, pageIndex), pages - 1);
      const start = pageIndex * PAGE_SIZE;
      const end = Math.min(results.length, start + PAGE_SIZE);
      await S.answers.rows(results.subarray(start, end));
      if (mine !== rendering) return false;
      const items = [];
      for (let k = start; k < end; k++) items.push(resultItem(results[k]));
      list.replaceChildren(...items);
      pagerText.textContent = results.length
        ? `${fmtInt(start + 1)}–${fmtInt(end)} (page ${fmtInt(pageIndex + 1)} of ${fmtInt(pages)})`
        : "no answer matches";
      prev.disabled = pageIndex === 0;
      next.disabled = pageIndex >= pages - 1;
      return true;
    }

    function resultItem(i) {
      const where = `${dimValue(S, "model", i)} · ${dimValue(S, "question", i)} · p${show(dimValue(S, "paraphrase", i))} · #${S.sample[i]}`;
      const snippet = S.answers.answer(i).slice(0, 300).replace(/\s+/g, " ");
      const details = h(
        "details",
        { "data-row": String(i) },
        h("summary", null, badge(labelOf(S, i)), h("span", { class: "dm-where", text: where }), h("span", { class: "dm-snippet", text: snippet })),
      );
      details.addEventListener("toggle", () => {
        if (details.open && details.children.length === 1) details.append(answerDetail(S, i));
      });
      return h("li", null, details);
    }

    function setFilter(filter) {
      state.dims = {};
      state.ranges = {};
      state.text = "";
      for (const [key, value] of Object.entries(filter || {})) {
        if (key === "text") state.text = String(value).trim().toLowerCase();
        else if (key === "ranges") {
          for (const [metric, [lo, hi]] of Object.entries(value)) state.ranges[metric] = [lo ?? null, hi ?? null];
        } else if (S.dims[key]) {
          const code = S.dims[key].values.findIndex((v) => show(v) === String(value));
          state.dims[key] = code; // -1 when the run has no such value: nothing filtered on it
        }
      }
      for (const d of DIMENSIONS) controls[d].value = String(state.dims[d] ?? -1);
      search.value = state.text;
      for (const m of S.metrics) {
        const [lo, hi] = controls[`range:${m.key}`];
        const r = state.ranges[m.key] || [null, null];
        lo.value = r[0] === null ? "" : String(r[0]);
        hi.value = r[1] === null ? "" : String(r[1]);
      }
      return apply();
    }

    // The free-text search needs every answer: read them once the first page is up.
    const prepareSearch = () => {
      if (index === null) index = searchIndex(S);
    };
    return { apply, setFilter, state, sideButton, prepareSearch };
  }

  function turn(role, text) {
    return h("div", { class: `dm-turn dm-turn-${role}` }, h("div", { class: "dm-role", text: role }), h("pre", { class: "dm-text", text }));
  }

  function answerDetail(S, i) {
    const D = S.D;
    const box = h("div", { class: "dm-detail" });
    const facts = [
      `model ${dimValue(S, "model", i)}`,
      `group ${show(dimValue(S, "group", i))}`,
      `seed ${show(dimValue(S, "seed", i))}`,
      `kind ${dimValue(S, "kind", i)}`,
      `question ${dimValue(S, "question", i)}${S.qtype[i] >= 0 ? ` (${S.text[S.qtype[i]]})` : ""}`,
      `domain ${show(dimValue(S, "domain", i))}`,
      `paraphrase ${show(dimValue(S, "paraphrase", i))}`,
      `sample ${S.sample[i]}`,
    ];
    box.append(h("div", { class: "dm-kv", text: facts.join(" · ") }));
    for (const mid of D.conversations[S.conversation[i]]) {
      const [role, tid] = D.messages[mid];
      box.append(turn(role, S.text[tid]));
    }
    box.append(turn("assistant", S.answers.answer(i)));
    box.append(h("p", { class: "dm-reason" }, badge(labelOf(S, i)), " ", reasonText(S, i)));
    const head = ["metric", "value", "category", "source", "version", "role", "error", "failed", "explanation"];
    const table = h("table", { class: "dm-scores" }, h("tr", null, ...head.map((c) => h("th", { text: c }))));
    for (let k = S.scoreOffsets[i]; k < S.scoreOffsets[i + 1]; k++) {
      const [metric, value, category, source, version, role, error, failed, explanation] = D.scores[S.scoreIds[k]];
      const cells = [
        textOf(S, metric),
        value === null ? "none" : String(value),
        textOf(S, category),
        textOf(S, source),
        textOf(S, version),
        textOf(S, role),
        textOf(S, error),
        failed ? "yes" : "",
        textOf(S, explanation),
      ];
      table.append(h("tr", null, ...cells.map((c) => h("td", { text: c }))));
    }
    box.append(S.scoreOffsets[i] === S.scoreOffsets[i + 1] ? h("p", { class: "dm-kv", text: "no scores" }) : table);
    const extension = S.answers.extension(i);
    if (extension !== null) box.append(h("pre", { class: "dm-ext", text: extension }));
    return box;
  }

  // ---- side by side: one question, every model's answers, the baseline first ---------
  function sideBySide(S, root) {
    const D = S.D;
    const models = S.dims.model.values;
    const first = D.baseline.models.map((m) => models.indexOf(m)).filter((c) => c >= 0);
    const order = [...first, ...models.map((_, c) => c).filter((c) => !first.includes(c))];
    const question = h("select", { name: "side-question" });
    S.dims.question.values.forEach((q, code) => question.append(h("option", { value: String(code) }, q)));
    const paraphrase = h("select", { name: "side-paraphrase" }, h("option", { value: "-1" }, "any"));
    S.dims.paraphrase.values.forEach((p, code) => paraphrase.append(h("option", { value: String(code) }, show(p))));
    const perModel = h("select", { name: "side-limit" }, ...[5, 10, 25, 100].map((k) => h("option", { value: String(k) }, String(k))));
    const prompt = h("div", { class: "dm-kv" });
    const columns = h("div", { class: "dm-columns", id: "dm-side-columns" });
    root.replaceChildren(
      h(
        "div",
        { class: "dm-side-controls" },
        h("label", null, "question", question),
        h("label", null, "paraphrase", paraphrase),
        h("label", null, "answers per model", perModel),
        h("span", { class: "dm-kv", text: `first column(s): ${D.baseline.rule}` }),
      ),
      prompt,
      columns,
    );

    let rendering = 0;
    async function render() {
      const mine = ++rendering;
      const q = Number(question.value);
      const p = Number(paraphrase.value);
      const limit = Number(perModel.value);
      const qc = S.dims.question.codes;
      const pc = S.dims.paraphrase.codes;
      const mc = S.dims.model.codes;
      const lc = S.dims.label.codes;
      const picked = models.map(() => []);
      const counts = models.map(() => new Int32Array(S.dims.label.values.length));
      let example = -1;
      for (let i = 0; i < S.n; i++) {
        if (qc[i] !== q || (p >= 0 && pc[i] !== p)) continue;
        if (example < 0) example = i;
        counts[mc[i]][lc[i]] += 1;
        if (picked[mc[i]].length < limit) picked[mc[i]].push(i);
      }
      delete columns.dataset.question; // set again once this question's answers are shown
      columns.replaceChildren(h("p", { class: "dm-status", text: "Reading the answers…" }));
      await S.answers.rows(picked.flat());
      if (mine !== rendering) return;
      prompt.replaceChildren();
      if (example >= 0) {
        for (const mid of D.conversations[S.conversation[example]]) {
          const [role, tid] = D.messages[mid];
          prompt.append(turn(role, S.text[tid]));
        }
      }
      const cols = [];
      for (const c of order) {
        if (!picked[c].length) continue;
        const total = counts[c].reduce((a, b) => a + b, 0);
        const summary = S.dims.label.values
          .map((l, k) => [l, counts[c][k]])
          .filter(([, k]) => k > 0)
          .map(([l, k]) => `${k} ${l}`)
          .join(" · ");
        const isBase = first.includes(c);
        const col = h(
          "div",
          { class: `dm-column${isBase ? " dm-column-baseline" : ""}`, "data-model": models[c] },
          h("h3", { text: isBase ? `${models[c]} (baseline)` : models[c] }),
          h("div", { class: "dm-kv", text: `${total} answers: ${summary}` }),
        );
        for (const i of picked[c]) {
          col.append(
            h(
              "div",
              { class: "dm-card" },
              h("div", { class: "dm-kv" }, badge(labelOf(S, i)), ` p${show(dimValue(S, "paraphrase", i))} · #${S.sample[i]} · seed ${show(dimValue(S, "seed", i))}`),
              h("pre", { class: "dm-text", text: S.answers.answer(i) }),
              h("div", { class: "dm-kv", text: reasonText(S, i) }),
            ),
          );
        }
        cols.push(col);
      }
      columns.replaceChildren(...cols);
      if (!cols.length) columns.append(h("p", { class: "dm-status", text: "No answer to this question." }));
      columns.dataset.question = S.dims.question.values[q];
      columns.dataset.paraphrase = p >= 0 ? show(S.dims.paraphrase.values[p]) : "any";
    }
    for (const el of [question, paraphrase, perModel]) el.addEventListener("change", render);

    function show_(questionCode, paraphraseCode) {
      if (questionCode >= 0) question.value = String(questionCode);
      paraphrase.value = String(paraphraseCode ?? -1);
      return render();
    }
    return { show: show_, render: () => (S.dims.question.values.length ? render() : null) };
  }

  // ---- start ---------------------------------------------------------------------------
  function filterFromHash() {
    const hash = decodeURIComponent(location.hash);
    const at = hash.indexOf("?");
    if (!hash.startsWith("#samples") || at < 0) return null;
    return Object.fromEntries(new URLSearchParams(hash.slice(at + 1)));
  }

  function ready() {
    page.timings.ready = performance.now();
    page.ready = true;
    document.documentElement.dataset.ready = "1";
  }

  let pending = filterFromHash();
  let api = null;
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a.dm-filter-link");
    if (!link) return;
    event.preventDefault();
    const filter = JSON.parse(link.dataset.filter);
    if (api) api.setFilter(filter);
    else pending = filter;
    document.getElementById("samples").scrollIntoView();
  });

  async function start() {
    const root = document.getElementById("dm-browser");
    const side = document.getElementById("dm-side");
    const blob = document.getElementById("dm-samples").textContent.trim();
    if (!blob) {
      root.replaceChildren(h("p", { class: "dm-status", text: "This run has no rows.jsonl: no answers to browse." }));
      side.replaceChildren();
      page.empty = true;
      ready();
      return;
    }
    try {
      const D = await decode(blob);
      page.timings.index = performance.now();
      const S = load(D, [...document.querySelectorAll("script.dm-chunk")]);
      page.n = S.n;
      page.timings.columns = performance.now();
      api = browser(S, root);
      const sbs = sideBySide(S, side);
      api.sideButton.addEventListener("click", () => {
        sbs.show(api.state.dims.question ?? -1, api.state.dims.paraphrase ?? -1);
        side.scrollIntoView();
      });
      page.setFilter = api.setFilter;
      page.sideBySide = sbs.show;
      await api.setFilter(pending || {});
      ready();
      await sbs.render();
      api.prepareSearch();
    } catch (err) {
      root.replaceChildren(h("p", { class: "dm-status", text: `The answers could not be read in this browser: ${err}` }));
      page.error = String(err);
      ready();
    }
  }
  start();
})();
