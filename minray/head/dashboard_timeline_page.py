"""The timeline's page (``/timeline``, dashboard_timeline.py): plain canvas and JavaScript,
no external files.

A row per worker, grouped under a line per node; a bar per run of a task or actor call,
coloured by its state (green finished, red failed, blue still running), on a time axis.
The wheel zooms around the pointer, shift+wheel or dragging pans (dragging also scrolls
the rows), and the buttons do both. Hovering a bar names it; clicking it shows the task
(name, id, node, worker pid, duration, error with its traceback) and links to its row
on the overview page. It loads ``/api/timeline/slices`` every two seconds while "live"
is ticked. Past ``MAX_SLICES`` runs in view the head sends a summary instead (each
row's busy share per bin, red where a run failed) and the page says so; zooming in
asks for the narrower window until its runs come one by one.

For tests, the canvas carries ``data-mode``, ``data-runs``, ``data-done`` (finished and
failed runs in the answer) and ``data-bars`` (bars drawn), ``timelineBars()`` lists
the drawn bars with their places on the canvas, and ``/timeline?max_slices=N`` lowers
the number of runs past which the head summarises.
"""

from .page_head import page_head, page_top

TIMELINE_PAGE = (
    page_head("minray timeline")
    + r"""  #status { color: #666; margin: 0.4em 0; }
  #summary-note { background: #fff6d6; padding: 0.3em 0.6em; display: none; }
  #tools { margin: 0.4em 0; }
  #tools button { min-width: 2.2em; }
  #legend span { display: inline-block; margin-left: 1em; font-size: 12px; }
  #legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px;
              vertical-align: -2px; border-radius: 2px; }
  #frame { border: 1px solid #ddd; overflow-y: auto; max-height: 70vh; position: relative; }
  #timeline { display: block; position: sticky; top: 0; cursor: grab; }
  #tip { position: fixed; pointer-events: none; background: #222; color: #fff; padding: 3px 6px;
         font: 12px ui-monospace, monospace; border-radius: 3px; display: none;
         white-space: pre; z-index: 2; }
  #detail { font-family: ui-monospace, monospace; font-size: 12px; white-space: pre-wrap;
            background: #f4f4f4; padding: 0.6em; margin-top: 0.6em; min-height: 1.5em; }
"""
    + page_top("minray timeline")
    + r"""<div id="status">loading...</div>
<div id="summary-note"></div>
<div id="tools">
  <button type="button" id="zoom-in" title="zoom in (or the wheel)">+</button>
  <button type="button" id="zoom-out" title="zoom out">&minus;</button>
  <button type="button" id="pan-left" title="earlier (or shift+wheel, or drag)">&larr;</button>
  <button type="button" id="pan-right" title="later">&rarr;</button>
  <button type="button" id="fit" title="show every run">Fit</button>
  <label><input type="checkbox" id="live" checked> live</label>
  <span id="legend"></span>
  &nbsp; <a href="/api/timeline" download="minray-timeline.json">Download the Chrome trace</a>
  (open it in https://ui.perfetto.dev)
</div>
<div id="frame"><canvas id="timeline" data-mode="" data-runs="0" data-done="0"
  data-bars="0"></canvas><div id="spacer"></div></div>
<div id="tip"></div>
<div id="detail">Click a bar for its task.</div>
<script>
const COLOURS = {FINISHED: "#4daf4a", FAILED: "#e03131", RUNNING: "#3a86c8"};
// runs drawn one by one at most; past it the head summarises ("?max_slices=N" to choose)
const MAX_SLICES = Number(new URLSearchParams(location.search).get("max_slices")) || 5000;
const LABEL_W = 230, AXIS_H = 24, ROW_H = 18, NODE_H = 20, REFRESH_MS = 2000;
const canvas = document.getElementById("timeline"), frame = document.getElementById("frame");
let data = null;        // the head's last answer
let lines = [];         // what each line of the canvas shows: a node, or a worker's row
let rowY = [];          // the y of each worker row
let viewT = null;       // [t0, t1]: the milliseconds shown across the canvas
let moved = false;      // whether the user zoomed or panned (else each load fits)
let query = null;       // the window asked of the head (null: every run)
let bars = [];          // the bars drawn: {x, y, w, h, slice or cell}
let loading = false, loadAgain = false, loadTimer = null, drawQueued = false;
let selected = null;     // the clicked run: "task_id:attempt"

async function json(path) {
  const response = await fetch(path);
  if (response.status === 401) window.location.assign("/login");  // the login has lapsed
  if (!response.ok) throw new Error(path + ": " + response.status);
  return response.json();
}

// --- loading ----------------------------------------------------------------------------

async function load() {
  if (loading) { loadAgain = true; return; }
  loading = true;
  try {
    const params = new URLSearchParams({max_slices: MAX_SLICES});
    if (query) {
      params.set("start_ms", query[0].toFixed(3));
      params.set("end_ms", query[1].toFixed(3));
    }
    data = await json("/api/timeline/slices?" + params);
    layoutLines();
    if (!moved || viewT === null) viewT = fitted();
    draw();
  } catch (error) {
    setStatus("cannot load the timeline: " + error);
  } finally {
    loading = false;
    if (loadAgain) { loadAgain = false; load(); }
  }
}

function fitted() {
  const [a, b] = data.span, pad = Math.max((b - a) * 0.02, 0.5);
  return [a - pad, b + pad];
}

// after a zoom or pan: ask for the shown window when what was loaded does not cover it,
// or is a summary of a window much wider than the one shown (zooming in gives detail)
function askForView() {
  if (!data) return;
  const [t0, t1] = viewT, [a, b] = data.span, shown = t1 - t0;
  const covered = query === null || (t0 >= query[0] && t1 <= query[1]);
  const coarse = data.mode === "summary" && shown < (data.window[1] - data.window[0]) / 2;
  if (covered && !coarse) return;
  const want = [Math.max(a, t0 - shown / 2), Math.min(b, t1 + shown / 2)];
  if (want[1] <= want[0]) return;  // past every run: nothing to ask for
  query = want[0] <= a && want[1] >= b ? null : want;
  clearTimeout(loadTimer);
  loadTimer = setTimeout(load, 250);
}

// --- layout: a line per node, then a line per worker of that node --------------------------

function layoutLines() {
  lines = []; rowY = new Array(data.rows.length);
  let y = AXIS_H, node = null;
  data.rows.forEach((row, i) => {
    if (row.node_id !== node) {
      node = row.node_id;
      const info = data.nodes[node] || {};
      const label = "node " + (node ? node.slice(0, 12) : "?") +
        (info.address ? " " + info.address : "") + (info.head ? " (head)" : "");
      lines.push({kind: "node", y, h: NODE_H, label});
      y += NODE_H;
    }
    rowY[i] = y;
    const worker = row.worker_id ? row.worker_id.slice(0, 12) : "?";
    lines.push({kind: "worker", y, h: ROW_H, label: `pid ${row.pid || "?"}  worker ${worker}`});
    y += ROW_H;
  });
  const height = Math.max(y + 4, AXIS_H + ROW_H);
  const shown = Math.min(height, Math.round(window.innerHeight * 0.7));
  document.getElementById("spacer").style.height = Math.max(0, height - shown) + "px";
  size(shown);
}

function size(height) {
  const ratio = window.devicePixelRatio || 1, width = frame.clientWidth;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio); canvas.height = Math.round(height * ratio);
    canvas.style.width = width + "px"; canvas.style.height = height + "px";
  }
}

// --- drawing ----------------------------------------------------------------------------

function xOf(t) { return LABEL_W + (t - viewT[0]) / (viewT[1] - viewT[0]) * (width() - LABEL_W); }
function tOf(x) { return viewT[0] + (x - LABEL_W) / (width() - LABEL_W) * (viewT[1] - viewT[0]); }
function width() { return canvas.clientWidth; }
function field(name) { return data.fields.indexOf(name); }

function drawSoon() {
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(() => { drawQueued = false; draw(); });
}

function draw() {
  if (!data || !viewT) return;
  const ratio = window.devicePixelRatio || 1, ctx = canvas.getContext("2d");
  const W = width(), H = canvas.clientHeight, top = frame.scrollTop;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, W, H);
  ctx.font = "11px ui-monospace, monospace";
  ctx.textBaseline = "middle";
  for (const line of lines) {  // the rows' backgrounds and labels
    const y = line.y - top;
    if (y + line.h < AXIS_H || y > H) continue;
    ctx.fillStyle = line.kind === "node" ? "#e8eef6" : "#fafafa";
    ctx.fillRect(0, y, W, line.h - 1);
  }
  bars = [];
  ctx.save();
  ctx.beginPath(); ctx.rect(LABEL_W, AXIS_H, W - LABEL_W, H - AXIS_H); ctx.clip();
  if (data.mode === "slices") drawSlices(ctx, top, H); else drawCells(ctx, top, H);
  ctx.restore();
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, LABEL_W, H);  // the labels over the bars
  for (const line of lines) {
    const y = line.y - top;
    if (y + line.h < AXIS_H || y > H) continue;
    ctx.fillStyle = line.kind === "node" ? "#e8eef6" : "#fafafa";
    ctx.fillRect(0, y, LABEL_W, line.h - 1);
    ctx.fillStyle = "#222";
    ctx.font = (line.kind === "node" ? "bold " : "") + "11px ui-monospace, monospace";
    ctx.fillText(line.label, line.kind === "node" ? 4 : 14, y + line.h / 2, LABEL_W - 16);
  }
  drawAxis(ctx, W);
  canvas.dataset.mode = data.mode;
  canvas.dataset.runs = data.runs;
  canvas.dataset.done = data.done;
  canvas.dataset.bars = bars.length;
  status();
}

function drawSlices(ctx, top, H) {
  const [R, S, E, ST, N] = ["row", "start_ms", "end_ms", "state", "name"].map(field);
  for (const s of data.slices) {
    const y = rowY[s[R]] - top + 2, h = ROW_H - 5;
    if (y + h < AXIS_H || y > H) continue;
    const x0 = xOf(s[S]), x1 = xOf(s[E]);
    if (x1 < LABEL_W || x0 > width()) continue;
    const w = Math.max(x1 - x0, 1);
    ctx.fillStyle = COLOURS[s[ST]] || "#999";
    ctx.fillRect(x0, y, w, h);
    if (key(s) === selected) {  // a frame around it, its own colour still seen
      ctx.strokeStyle = "#000"; ctx.lineWidth = 1.5;
      ctx.strokeRect(x0 - 2.5, y - 1.5, w + 5, h + 3);
    }
    if (w > 40) {
      ctx.fillStyle = "#fff";
      ctx.fillText(s[N], Math.max(x0, LABEL_W) + 3, y + h / 2, w - 6);
    }
    bars.push({x: x0, y, w, h, slice: s});
  }
}

function drawCells(ctx, top, H) {  // a summary: each row's busy share of each bin
  const [R, B, BUSY, F, RUN] = ["row", "bin", "busy_ms", "failed", "running"].map(field);
  const [a, b] = data.window, bin = (b - a) / data.bins;
  for (const c of data.cells) {
    const y = rowY[c[R]] - top + 2, h = ROW_H - 5;
    if (y + h < AXIS_H || y > H) continue;
    const x0 = xOf(a + c[B] * bin), x1 = xOf(a + (c[B] + 1) * bin);
    if (x1 < LABEL_W || x0 > width()) continue;
    const w = Math.max(x1 - x0, 1);
    ctx.globalAlpha = 0.25 + 0.75 * Math.min(1, c[BUSY] / bin);
    ctx.fillStyle = c[F] ? COLOURS.FAILED : c[RUN] ? COLOURS.RUNNING : COLOURS.FINISHED;
    ctx.fillRect(x0, y, w, h);
    bars.push({x: x0, y, w, h, cell: c, from: a + c[B] * bin, to: a + (c[B] + 1) * bin});
  }
  ctx.globalAlpha = 1;
}

function step(span) {  // a tick interval of 1, 2 or 5 times a power of ten, about 100 px
  const rough = span / Math.max(1, (width() - LABEL_W) / 100);
  const power = Math.pow(10, Math.floor(Math.log10(rough)));
  return [1, 2, 5, 10].map(m => m * power).find(s => s >= rough);
}

function duration(ms) {
  const a = Math.abs(ms);
  if (a === 0) return "0";
  if (a >= 1000) return (ms / 1000).toFixed(a >= 10000 ? 1 : 2) + " s";
  if (a >= 1) return ms.toFixed(a >= 10 ? 0 : 1) + " ms";
  return (ms * 1000).toFixed(0) + " \u00b5s";
}

function drawAxis(ctx, W) {  // ticks from the first run's start (+0)
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, AXIS_H);
  ctx.strokeStyle = "#bbb"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(LABEL_W, AXIS_H - 0.5); ctx.lineTo(W, AXIS_H - 0.5); ctx.stroke();
  const origin = data.span[0], every = step(viewT[1] - viewT[0]);
  ctx.fillStyle = "#555"; ctx.font = "11px ui-monospace, monospace";
  for (let t = Math.ceil((viewT[0] - origin) / every) * every; origin + t <= viewT[1]; t += every) {
    const x = Math.round(xOf(origin + t)) + 0.5;
    ctx.beginPath(); ctx.moveTo(x, AXIS_H - 6); ctx.lineTo(x, AXIS_H); ctx.stroke();
    ctx.fillText("+" + duration(t), x + 2, AXIS_H / 2 - 1);
  }
  ctx.fillStyle = "#222";
  ctx.fillText("worker (by node)", 4, AXIS_H / 2);
}

function setStatus(text) { document.getElementById("status").textContent = text; }

function status() {
  const d = data, workers = d.rows.length;
  const shown = viewT ? ` - ${duration(viewT[1] - viewT[0])} shown` : "";
  setStatus(`${d.total_runs} runs on ${workers} workers; ${d.runs} in the window ` +
    `(${d.done - d.failed} finished, ${d.failed} failed, ${d.running} running)${shown}` +
    (d.dropped ? `, ${d.dropped} task events dropped` : "") +
    ` - updated ${new Date().toLocaleTimeString()}`);
  const note = document.getElementById("summary-note");
  note.style.display = d.mode === "summary" ? "block" : "none";
  note.textContent = d.mode === "summary"
    ? `Summarised: ${d.runs} runs in this window, more than ${d.max_slices}. Each row shows ` +
      `how busy the worker was in each of ${d.bins} slots (darker: busier; red: a run ` +
      `failed; blue: one still runs). Zoom in, or click a slot, to see runs one by one.` : "";
}

// --- pointing: hover, click, zoom, pan ---------------------------------------------------

function barAt(x, y) {
  let best = null, gap = 4;
  for (const b of bars) {
    if (y < b.y || y > b.y + b.h) continue;
    const d = x < b.x ? b.x - x : x > b.x + b.w ? x - b.x - b.w : 0;
    if (d < gap || (d === 0 && best && b.w < best.w)) { best = b; gap = d; }
  }
  return best;
}

function where(event) {
  const box = canvas.getBoundingClientRect();
  return [event.clientX - box.left, event.clientY - box.top];
}

function describe(b) {
  if (b.cell) {
    const [RUNS, BUSY, F, RUN] = ["runs", "busy_ms", "failed", "running"].map(field);
    return `${b.cell[RUNS]} runs, busy ${duration(b.cell[BUSY])} of ${duration(b.to - b.from)}` +
      (b.cell[F] ? `, ${b.cell[F]} failed` : "") + (b.cell[RUN] ? `, ${b.cell[RUN]} running` : "");
  }
  const s = b.slice, get = name => s[field(name)];
  return `${get("name")} (${get("state")}) ${duration(get("end_ms") - get("start_ms"))}` +
    (get("error") ? "\n" + get("error") : "");
}

function zoom(factor, atX) {
  const t = tOf(atX), [t0, t1] = viewT;
  const span = Math.max(0.01, (t1 - t0) * factor);
  const left = (t - t0) / (t1 - t0);
  viewT = [t - left * span, t - left * span + span];
  moved = true; drawSoon(); askForView();
}

function pan(dx) {
  const dt = dx / (width() - LABEL_W) * (viewT[1] - viewT[0]);
  viewT = [viewT[0] + dt, viewT[1] + dt];
  moved = true; drawSoon(); askForView();
}

canvas.addEventListener("wheel", event => {
  if (!data) return;
  event.preventDefault();
  const [x] = where(event);
  if (event.shiftKey || Math.abs(event.deltaX) > Math.abs(event.deltaY)) {
    pan(event.shiftKey ? event.deltaY : event.deltaX);
  } else {
    zoom(Math.exp(event.deltaY * 0.002), Math.max(x, LABEL_W));
  }
}, {passive: false});

let drag = null;
canvas.addEventListener("mousedown", event => {
  drag = {start: where(event), last: where(event), top: frame.scrollTop, far: false};
});
window.addEventListener("mousemove", event => {
  const [x, y] = where(event), tip = document.getElementById("tip");
  if (drag) {
    if (Math.abs(x - drag.start[0]) + Math.abs(y - drag.start[1]) > 4) drag.far = true;
    if (drag.far) {
      pan(drag.last[0] - x);
      frame.scrollTop = drag.top - (y - drag.start[1]);
      drag.last = [x, y];
    }
    return;
  }
  const b = event.target === canvas ? barAt(x, y) : null;
  tip.style.display = b ? "block" : "none";
  if (b) {
    tip.textContent = describe(b);
    tip.style.left = event.clientX + 12 + "px"; tip.style.top = event.clientY + 12 + "px";
  }
});
window.addEventListener("mouseup", event => {
  const wasClick = drag && !drag.far;
  drag = null;
  if (!wasClick || event.target !== canvas) return;
  const [x, y] = where(event), b = barAt(x, y);
  if (!b) return;
  if (b.cell) {  // a slot of a summary: zoom to it and its neighbours
    const span = (b.to - b.from) * 5, mid = (b.from + b.to) / 2;
    viewT = [mid - span / 2, mid + span / 2];
    moved = true; draw(); askForView();
    return;
  }
  select(b.slice);
});
frame.addEventListener("scroll", drawSoon);
// the frame narrows when the page gains a scroll bar (a long traceback below, say):
// follow it at once, so the bars drawn stay where the pointer finds them
new ResizeObserver(() => { if (data) { layoutLines(); draw(); } }).observe(frame);

function key(s) { return s[field("task_id")] + ":" + s[field("attempt")]; }

async function select(s) {
  selected = key(s); draw();
  const get = name => s[field(name)], id = get("task_id"), row = data.rows[get("row")];
  const detail = document.getElementById("detail");
  const link = document.createElement("a");
  link.href = "/#task=" + id; link.textContent = "its row on the overview";
  const text = [
    `${get("name")} (${get("type")}), attempt ${get("attempt")}: ${get("state")}`,
    `task ${id}`,
    `node ${row.node_id || "?"}  worker ${row.worker_id || "?"}  pid ${row.pid || "?"}`,
    `ran ${duration(get("end_ms") - get("start_ms"))}` +
      (get("state") === "RUNNING" ? " so far" : ""),
  ];
  if (get("error")) text.push(`error: ${get("error")}`);
  detail.textContent = text.join("\n") + "\n";
  detail.appendChild(link);
  if (!get("error")) return;
  try {  // the traceback, from the task table
    const {tasks} = await json("/api/tasks?task_id=" + id);
    const t = tasks.find(t => t.attempt_number === get("attempt"));
    if (t && t.error_message && selected === key(s)) {
      detail.appendChild(document.createTextNode("\n\n" + t.error_message));
    }
  } catch (error) { /* the slice's own text stays */ }
}

window.timelineBars = () => bars.map(b => ({x: b.x, y: b.y, w: b.w, h: b.h,
  name: b.slice ? b.slice[field("name")] : null,
  state: b.slice ? b.slice[field("state")] : null,
  failed: b.cell ? b.cell[field("failed")] : null}));

document.getElementById("zoom-in").onclick = () => zoom(0.5, (LABEL_W + width()) / 2);
document.getElementById("zoom-out").onclick = () => zoom(2, (LABEL_W + width()) / 2);
document.getElementById("pan-left").onclick = () => pan(-(width() - LABEL_W) * 0.3);
document.getElementById("pan-right").onclick = () => pan((width() - LABEL_W) * 0.3);
document.getElementById("fit").onclick = () => {
  moved = false; query = null; if (data) { viewT = fitted(); draw(); } load();
};
for (const [state, colour] of Object.entries(COLOURS)) {
  const item = document.createElement("span"), swatch = document.createElement("i");
  swatch.style.background = colour;
  item.append(swatch, state.toLowerCase());
  document.getElementById("legend").appendChild(item);
}
load();
setInterval(() => { if (document.getElementById("live").checked) load(); }, REFRESH_MS);
</script>
</body>
</html>
"""
)
