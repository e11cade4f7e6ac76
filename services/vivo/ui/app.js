// Floe Vivo live viewer: follows /api/v1/logs|metrics|traces with
// Server-Sent Events (one event per chunk, event id = chunk id), filters by
// tag (server side, a Fluent Bit Match pattern) and text (here), pauses and
// resumes from the last chunk id seen. No build step, no dependencies.
"use strict";

const SIGNALS = ["logs", "metrics", "traces"];
const MAX_ROWS = 5000;

const $ = (id) => document.getElementById(id);
const rows = $("rows");
const state = {
  paused: false,
  sources: {},   // signal -> EventSource
  last: {},      // signal -> last chunk id received
  count: {},     // signal -> chunks received
};
for (const s of SIGNALS) { state.last[s] = -1; state.count[s] = 0; }

function statusOf(signal) { return document.querySelector(`#status .sig[data-signal="${signal}"]`); }

function setState(signal, text) { statusOf(signal).querySelector(".state").textContent = text; }

function updateStatus(signal) {
  const el = statusOf(signal);
  el.querySelector(".last").textContent = state.last[signal] < 0 ? "–" : String(state.last[signal]);
  el.querySelector(".count").textContent = String(state.count[signal]);
}

function showing(signal) { return $("show-" + signal).checked; }

// url builds a follow URL; from is the first chunk id wanted (undefined: whole stream).
function url(signal, from) {
  const q = new URLSearchParams({ follow: "1" });
  const tag = $("tag").value.trim();
  if (tag) q.set("tag", tag);
  if (from !== undefined && from >= 0) q.set("from", String(from));
  return `../api/v1/${signal}?${q}`;
}

// startFrom works out where a fresh follow starts from the history setting
// and the stream's next id (a HEAD request: it never empties a stream).
async function startFrom(signal) {
  const history = Number($("history").value);
  if (history < 0) return undefined;
  try {
    const r = await fetch(`../api/v1/${signal}?to=-2`, { method: "HEAD", cache: "no-store" });
    const next = Number(r.headers.get("vivo-stream-next-id"));
    if (!Number.isFinite(next)) return undefined;
    return Math.max(0, next - history);
  } catch (e) {
    return undefined;
  }
}

async function open(signal, from) {
  close(signal);
  if (state.paused || !showing(signal)) { setState(signal, state.paused ? "paused" : "hidden"); return; }
  if (from === undefined) from = await startFrom(signal);
  if (state.paused || !showing(signal)) return;
  const es = new EventSource(url(signal, from));
  state.sources[signal] = es;
  setState(signal, "connecting");
  es.onopen = () => setState(signal, "live");
  es.onerror = () => setState(signal, es.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
  es.onmessage = (ev) => receive(signal, Number(ev.lastEventId), ev.data);
}

function close(signal) {
  const es = state.sources[signal];
  if (es) { es.close(); delete state.sources[signal]; }
}

function reopenAll(resume) {
  for (const s of SIGNALS) {
    open(s, resume && state.last[s] >= 0 ? state.last[s] + 1 : undefined);
  }
}

function receive(signal, id, data) {
  if (Number.isFinite(id)) state.last[signal] = id;
  state.count[signal]++;
  updateStatus(signal);
  let items;
  try {
    items = SIGNALS_RENDER[signal](data);
  } catch (e) {
    items = [{ time: "", tag: "", src: "", text: data }];
  }
  const frag = document.createDocumentFragment();
  for (const it of items) frag.appendChild(row(signal, id, it));
  rows.insertBefore(frag, rows.firstChild);
  while (rows.childElementCount > MAX_ROWS) rows.removeChild(rows.lastChild);
  $("empty").hidden = rows.childElementCount > 0;
  updateShown();
}

function row(signal, id, it) {
  const tr = document.createElement("tr");
  tr.className = "row " + signal;
  tr.dataset.signal = signal;
  tr.dataset.id = String(id);
  for (const [cls, text] of [["id", String(id)], ["signal", signal], ["time", it.time], ["tagc", it.tag], ["src", it.src], ["ev", it.text]]) {
    const td = document.createElement("td");
    td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
  }
  if (it.full) {
    tr.title = "click to expand";
    tr.addEventListener("click", () => {
      const ev = tr.querySelector("td.ev");
      const open = tr.classList.toggle("expanded");
      ev.textContent = open ? it.full : it.text;
    });
  }
  applyFilter(tr);
  return tr;
}

function nsToISO(ns) {
  const n = Number(ns);
  if (!Number.isFinite(n) || n <= 0) return "";
  return new Date(n / 1e6).toISOString();
}

function attrs(list) {
  const o = {};
  for (const kv of list || []) {
    const v = kv.value || {};
    o[kv.key] = v.stringValue ?? v.intValue ?? v.doubleValue ?? v.boolValue ?? JSON.stringify(v);
  }
  return o;
}

const SIGNALS_RENDER = {
  // {"source_type","source_name","tag","records":[[[ns,{meta}],{body}],…]}
  logs(data) {
    const c = JSON.parse(data);
    return (c.records || []).map((r) => {
      const meta = r[0][1];
      const body = JSON.stringify(r[1]);
      const hasMeta = meta && Object.keys(meta).length > 0;
      return { time: nsToISO(r[0][0]), tag: c.tag, src: c.source_name, text: hasMeta ? JSON.stringify(meta) + " " + body : body };
    });
  },
  // OTLP JSON ExportMetricsServiceRequest: one row per metric (OTLP carries
  // no Fluent Bit tag; the source column shows service.name).
  metrics(data) {
    const req = JSON.parse(data);
    const out = [];
    for (const rm of req.resourceMetrics || []) {
      const res = attrs(rm.resource && rm.resource.attributes);
      for (const sm of rm.scopeMetrics || []) {
        for (const m of sm.metrics || []) {
          const kind = ["sum", "gauge", "histogram", "summary", "exponentialHistogram"].find((k) => m[k]) || "";
          const dps = (m[kind] && m[kind].dataPoints) || [];
          const vals = dps.map((dp) => {
            const a = attrs(dp.attributes);
            const label = Object.keys(a).length ? Object.entries(a).map(([k, v]) => `${k}=${v}`).join(",") : "";
            const v = dp.asDouble ?? dp.asInt ?? dp.sum ?? dp.count ?? "";
            return label ? `{${label}} ${v}` : String(v);
          });
          const t = dps.length ? nsToISO(dps[0].timeUnixNano) : "";
          out.push({ time: t, tag: "", src: res["service.name"] || "", text: `${m.name} (${kind}) ${vals.join("  ")}`, full: JSON.stringify(m, null, 2) });
        }
      }
    }
    return out.length ? out : [{ time: "", tag: "", src: "", text: data }];
  },
  // OTLP JSON ExportTraceServiceRequest: one row per span.
  traces(data) {
    const req = JSON.parse(data);
    const out = [];
    for (const rs of req.resourceSpans || []) {
      const res = attrs(rs.resource && rs.resource.attributes);
      for (const ss of rs.scopeSpans || []) {
        for (const sp of ss.spans || []) {
          const ms = (Number(sp.endTimeUnixNano) - Number(sp.startTimeUnixNano)) / 1e6;
          out.push({ time: nsToISO(sp.startTimeUnixNano), tag: "", src: res["service.name"] || "",
            text: `${sp.name} ${Number.isFinite(ms) ? ms.toFixed(3) + " ms" : ""} trace ${sp.traceId || ""} span ${sp.spanId || ""}`, full: JSON.stringify(sp, null, 2) });
        }
      }
    }
    return out.length ? out : [{ time: "", tag: "", src: "", text: data }];
  },
};

function applyFilter(tr) {
  const text = $("text").value.trim().toLowerCase();
  const visible = showing(tr.dataset.signal) && (!text || tr.textContent.toLowerCase().includes(text));
  tr.classList.toggle("hidden", !visible);
}

function updateShown() {
  const hidden = rows.querySelectorAll("tr.hidden").length;
  $("shown").textContent = `${rows.childElementCount - hidden} rows shown` + (hidden ? `, ${hidden} filtered` : "");
}

function refilter() {
  for (const tr of rows.children) applyFilter(tr);
  updateShown();
}

$("text").addEventListener("input", refilter);
for (const s of SIGNALS) {
  $("show-" + s).addEventListener("change", () => {
    refilter();
    if (showing(s)) open(s, state.last[s] >= 0 ? state.last[s] + 1 : undefined); else { close(s); setState(s, "hidden"); }
  });
}
let tagTimer;
$("tag").addEventListener("input", () => {
  clearTimeout(tagTimer);
  tagTimer = setTimeout(() => { clearRows(); reopenAll(false); }, 400);
});
$("history").addEventListener("change", () => { clearRows(); reopenAll(false); });
$("pause").addEventListener("click", () => {
  state.paused = !state.paused;
  const b = $("pause");
  b.textContent = state.paused ? "Resume" : "Pause";
  b.classList.toggle("paused", state.paused);
  if (state.paused) {
    for (const s of SIGNALS) { close(s); setState(s, "paused"); }
  } else {
    reopenAll(true); // from the chunk after the last one seen: nothing is missed
  }
});
$("clear").addEventListener("click", clearRows);

function clearRows() {
  rows.textContent = "";
  $("empty").hidden = false;
  for (const s of SIGNALS) { state.last[s] = -1; state.count[s] = 0; updateStatus(s); }
  updateShown();
}

reopenAll(false);
