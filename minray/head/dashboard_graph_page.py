"""The task graph's page (``/graph``, dashboard_graph.py): plain SVG and JavaScript, no
external files.

It loads ``/api/graph`` and follows ``/api/graph/events``: a new task appears, and a
node changes colour with its state, as the program runs. Layout is layered, left to
right: a task stands one column right of the furthest task whose objects it takes (a
task or object that takes from none: just before the first that takes from it); within
a column, tasks sit near the tasks they take from (the mean row of those).
Edges are found with the rule of task_graph.edges (an object's id starts with the id of
the task that made it). Past the server's ``max_nodes`` the page shows its summary:
one box per function with a bar of its tasks' states, and counted edges between them.
"""

from .page_head import page_head, page_top

GRAPH_PAGE = (
    page_head("minray task graph")
    + r"""  #status { color: #666; margin: 0.4em 0; }
  #legend span { display: inline-block; margin-right: 1em; font-size: 12px; }
  #legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px;
              vertical-align: -2px; border-radius: 2px; }
  #frame { border: 1px solid #ddd; overflow: auto; max-height: 75vh; background: #fcfcfc; }
  svg text { font: 11px ui-monospace, monospace; pointer-events: none; }
  .node rect, .node circle { stroke: #555; stroke-width: 1; cursor: pointer; }
  .node.selected rect, .node.selected circle { stroke: #000; stroke-width: 2.5; }
  .edge { fill: none; stroke: #999; stroke-width: 1.2; }
  .edge.actor { stroke-dasharray: 4 3; stroke: #b59; }
  #detail { font-family: ui-monospace, monospace; font-size: 12px; white-space: pre-wrap;
            background: #f4f4f4; padding: 0.6em; margin-top: 0.6em; min-height: 1.5em; }
"""
    + page_top("minray task graph")
    + r"""<div id="status" data-mode="" data-nodes="0">loading...</div>
<div id="legend"></div>
<div id="frame"><svg id="graph" xmlns="http://www.w3.org/2000/svg" width="400" height="100">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7"
orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#999"/></marker></defs>
<g id="edges"></g><g id="nodes"></g></svg></div>
<div id="detail">Click a task for its details.</div>
<script>
const SVG = "http://www.w3.org/2000/svg";
const COLOURS = {
  PENDING_ARGS_AVAIL: "#e6d38a", PENDING_NODE_ASSIGNMENT: "#f4a259",
  SUBMITTED_TO_WORKER: "#a6cee3", RUNNING: "#3a86c8", FINISHED: "#4daf4a", FAILED: "#e03131",
};
const TASK_ID_HEX = 48;  // an object's id starts with the id of the task that made it
const MAX_NODES = 300;   // past this the server summarises the graph by function
let states = Object.keys(COLOURS);
let view = {mode: "tasks", tasks: new Map(), nodes: [], edges: []};
const LOAD_EVERY_MS = 2000;
let connected = false, loading = false, loadAgain = false, drawTimer = null;
let loadTimer = null, lastLoad = 0;
let missed = [];  // changes that came while the graph was loading
let selected = null;

async function json(path) {
  const response = await fetch(path);
  if (response.status === 401) window.location.assign("/login");  // the login has lapsed
  if (!response.ok) throw new Error(path + ": " + response.status);
  return response.json();
}

// --- the graph --------------------------------------------------------------------------

function objectNode(id) { return {id, kind: "object", name: "object", type: "OBJECT", state: ""}; }

// task_graph.edges: from the maker of each object a task takes (or the object's node),
// and from an actor's creation task to each call on it
function withEdges(tasks) {
  const creations = new Map();
  for (const t of tasks.values())
    if (t.type === "ACTOR_CREATION_TASK" && t.actor_id) creations.set(t.actor_id, t.id);
  const objects = new Map(), edges = [];
  for (const t of tasks.values()) {
    for (const oid of t.args || []) {
      let maker = oid.slice(0, TASK_ID_HEX);
      if (!tasks.has(maker) || maker === t.id) {
        maker = oid;
        if (!objects.has(oid)) objects.set(oid, objectNode(oid));
      }
      edges.push({from: maker, to: t.id, object: oid, kind: "data"});
    }
    const creation = t.type === "ACTOR_TASK" ? creations.get(t.actor_id) : undefined;
    if (creation !== undefined) edges.push({from: creation, to: t.id, object: null, kind: "actor"});
  }
  return {nodes: [...tasks.values(), ...objects.values()], edges};
}

async function load() {
  if (loading) { loadAgain = true; return; }
  loading = true;
  lastLoad = Date.now();
  try {
    const graph = await json("/api/graph?max_nodes=" + MAX_NODES);
    states = graph.states || states;
    if (graph.mode === "tasks") {
      const tasks = new Map();
      for (const n of graph.nodes) if (n.kind === "task") tasks.set(n.id, n);
      view = {mode: "tasks", tasks, ...withEdges(tasks)};
    } else {
      view = {mode: "summary", tasks: new Map(), nodes: graph.nodes, edges: graph.edges,
              total: graph.tasks};
    }
    view.dropped = graph.dropped;
    draw();
  } catch (error) {
    setStatus("cannot load the graph: " + error);
  } finally {
    loading = false;
    const late = missed.splice(0);  // (they may be newer than the graph just loaded)
    if (loadAgain) { loadAgain = false; loadSoon(); } else if (late.length) changed(late);
  }
}

function loadSoon() {  // at most one load per LOAD_EVERY_MS (a summary costs the head more)
  if (loadTimer !== null) return;
  const wait = Math.max(0, lastLoad + LOAD_EVERY_MS - Date.now());
  loadTimer = setTimeout(() => { loadTimer = null; load(); }, wait);
}

function changed(nodes) {
  if (loading) { missed.push(...nodes); return; }  // applied once the graph has loaded
  if (view.mode !== "tasks") { loadSoon(); return; }  // the summary comes from the head
  for (const n of nodes) view.tasks.set(n.id, n);
  Object.assign(view, withEdges(view.tasks));
  if (view.nodes.length > MAX_NODES) { loadSoon(); return; }  // the head summarises it
  if (drawTimer === null) drawTimer = setTimeout(() => { drawTimer = null; draw(); }, 100);
}

// --- layout: layers left to right --------------------------------------------------------

function layout(nodes, edges) {
  const byId = new Map(nodes.map((n, i) => [n.id, i]));
  const preds = nodes.map(() => []);
  for (const e of edges) {
    const a = byId.get(e.from), b = byId.get(e.to);
    if (a !== undefined && b !== undefined && a !== b) preds[b].push(a);
  }
  const depth = new Array(nodes.length).fill(-1), visiting = new Uint8Array(nodes.length);
  for (let start = 0; start < nodes.length; start++) {  // iterative DFS; cycles count as 0
    if (depth[start] >= 0) continue;
    const stack = [start];
    while (stack.length) {
      const v = stack[stack.length - 1];
      if (depth[v] >= 0) { stack.pop(); continue; }
      visiting[v] = 1;
      const waiting = preds[v].filter(p => depth[p] < 0 && !visiting[p]);
      if (waiting.length) { stack.push(...waiting); continue; }
      depth[v] = Math.max(-1, ...preds[v].map(p => depth[p])) + 1;
      visiting[v] = 0;
      stack.pop();
    }
  }
  const first = new Array(nodes.length).fill(Infinity);  // a source sits just before
  preds.forEach((ps, b) => { for (const a of ps) first[a] = Math.min(first[a], depth[b]); });
  nodes.forEach((n, i) => {  // the first task that takes from it (an actor, a put object)
    if (!preds[i].length && first[i] < Infinity) depth[i] = first[i] - 1;
  });
  const layers = [];
  nodes.forEach((n, i) => { (layers[depth[i]] = layers[depth[i]] || []).push(i); });
  const row = new Array(nodes.length).fill(0);
  for (const layer of layers) {
    if (!layer) continue;
    const centre = i => preds[i].length
      ? preds[i].reduce((s, p) => s + row[p], 0) / preds[i].length : Infinity;
    const keyed = layer.map((i, order) => [centre(i), order, i]);
    keyed.sort((a, b) => (a[0] - b[0]) || (a[1] - b[1]));
    keyed.forEach(([, , i], r) => { row[i] = r; });
  }
  return {depth, row};
}

// --- drawing -----------------------------------------------------------------------------

function el(name, attributes, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function short(text, n) { return text.length > n ? text.slice(0, n - 1) + "\u2026" : text; }

function draw() {
  const summary = view.mode === "summary";
  const dense = !summary && view.nodes.length > 120;  // a few hundred tasks: smaller boxes
  const W = summary ? 200 : dense ? 120 : 150, H = summary ? 46 : dense ? 16 : 24;
  const COL = W + 60, ROW = H + (dense ? 5 : 14);
  const {depth, row} = layout(view.nodes, view.edges);
  const at = new Map();
  view.nodes.forEach((n, i) => at.set(n.id, {x: 20 + depth[i] * COL, y: 20 + row[i] * ROW, n}));
  const edgesG = document.getElementById("edges"), nodesG = document.getElementById("nodes");
  edgesG.textContent = ""; nodesG.textContent = "";
  let width = 200, height = 60;
  for (const e of view.edges) {
    const a = at.get(e.from), b = at.get(e.to);
    if (!a || !b || a === b) continue;
    const [x1, y1] = a.n.kind === "object" ? [a.x + 14, a.y + H / 2] : [a.x + W, a.y + H / 2];
    const [x2, y2] = [b.x, b.y + H / 2], mid = (x1 + x2) / 2;
    const path = el("path", {class: "edge " + e.kind, "marker-end": "url(#arrow)",
      d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`}, edgesG);
    el("title", {}, path).textContent = e.count !== undefined
      ? e.count + (e.kind === "actor" ? " calls" : " objects") : (e.object || "actor call");
  }
  for (const {x, y, n} of at.values()) {
    const g = el("g", {class: "node", "data-kind": n.kind, "data-state": n.state || "",
                       "data-id": n.id, transform: `translate(${x},${y})`}, nodesG);
    if (n.id === selected) g.classList.add("selected");
    width = Math.max(width, x + W + 20); height = Math.max(height, y + H + 20);
    if (n.kind === "object") {
      el("circle", {cx: 7, cy: H / 2, r: 7, fill: "#ccc"}, g);
      el("title", {}, g).textContent = "object " + n.id + " (put, or made by a task not shown)";
    } else if (n.kind === "group") {
      drawGroup(g, n, W, H);
    } else {
      drawTask(g, n, W, H);
    }
    g.addEventListener("click", () => select(n));
  }
  const svg = document.getElementById("graph");
  svg.setAttribute("width", width); svg.setAttribute("height", height);
  const tasks = view.nodes.filter(n => n.kind === "task").length;
  const status = document.getElementById("status");
  status.dataset.mode = view.mode;
  status.dataset.nodes = view.nodes.length;
  status.dataset.tasks = summary ? view.total : tasks;
  setStatus(summary
    ? `${view.total} tasks, summarised by function (more than ${MAX_NODES} nodes)`
    : `${tasks} tasks and ${view.nodes.length - tasks} objects`);
}

function drawTask(g, n, W, H) {
  const actorCall = n.type === "ACTOR_TASK", creation = n.type === "ACTOR_CREATION_TASK";
  el("rect", {width: W, height: H, rx: actorCall ? 10 : 3,
              fill: COLOURS[n.state] || "#ddd", "stroke-width": creation ? 2.5 : 1}, g);
  el("text", {x: 6, y: H / 2 + 4}, g).textContent =
    short((creation ? "\u2605 " : "") + n.name, 20);
  el("title", {}, g).textContent = `${n.name} (${n.type})\n${n.state}` +
    (n.error ? "\n" + n.error : "") + "\ntask " + n.id;
}

function drawGroup(g, n, W, H) {
  el("rect", {width: W, height: H, rx: 4, fill: "#fff"}, g);
  el("text", {x: 6, y: 15}, g).textContent = short(n.name, 22) + "  \u00d7" + n.count;
  let x = 6;
  const known = states.filter(s => n.states[s]);
  for (const s of known) {  // a bar: each state's share of the group's tasks
    const w = (W - 12) * n.states[s] / n.count;
    el("rect", {x, y: 24, width: Math.max(w, 1), height: 14, fill: COLOURS[s] || "#ddd",
                "stroke-width": 0}, g);
    x += w;
  }
  el("title", {}, g).textContent = `${n.name} (${n.type}): ${n.count}\n` +
    known.map(s => `${s}: ${n.states[s]}`).join("\n");
}

async function select(n) {
  selected = n.id;
  for (const g of document.querySelectorAll("#nodes g.node"))
    g.classList.toggle("selected", g.dataset.id === selected);
  const detail = document.getElementById("detail");
  if (n.kind !== "task") {
    detail.textContent = n.kind === "group"
      ? `${n.name} (${n.type}): ${n.count} tasks\n` +
        states.filter(s => n.states[s]).map(s => `  ${s}: ${n.states[s]}`).join("\n")
      : `object ${n.id}`;
    return;
  }
  detail.textContent = `${n.name} (${n.type}) ${n.state}\ntask ${n.id}`;
  try {
    const {tasks} = await json("/api/tasks?task_id=" + n.id);
    const t = tasks[tasks.length - 1];
    if (!t || selected !== n.id) return;
    detail.textContent = [
      `${t.name} (${t.type}), attempt ${t.attempt_number}: ${t.state}`,
      `task ${t.task_id}`, `node ${t.node_id || "-"}  worker ${t.worker_id || "-"}` +
      `  pid ${t.worker_pid || "-"}`,
      t.error_type ? `error: ${t.exception_type || t.error_type}\n\n${t.error_message || ""}` : "",
      t.pending_reason ? `why pending: ${t.pending_reason}` : "",
    ].join("\n");
  } catch (error) { /* the node's own text stays */ }
}

function setStatus(text) {
  const live = connected ? "live" : "reconnecting...";
  const dropped = view.dropped ? `, ${view.dropped} task events dropped` : "";
  document.getElementById("status").textContent = `${text}${dropped} - ${live}`;
}

function legend() {
  const box = document.getElementById("legend");
  for (const s of states) {
    const item = document.createElement("span"), swatch = document.createElement("i");
    swatch.style.background = COLOURS[s];
    item.append(swatch, s);
    box.appendChild(item);
  }
  box.append("\u2605 actor creation, rounded: actor call, grey dot: object, dashed: actor");
}

// --- following the head -------------------------------------------------------------------

function follow() {
  const source = new EventSource("/api/graph/events");
  source.addEventListener("hello", () => { connected = true; load(); });
  source.addEventListener("changes", event => changed(JSON.parse(event.data).nodes));
  source.addEventListener("reload", loadSoon);
  source.addEventListener("reset", loadSoon);
  source.onerror = () => { connected = false; setStatus("lost the head"); };
}

legend();
follow();
</script>
</body>
</html>
"""
)
