"""The dashboard's overview page: tables of nodes, jobs, actors, workers, placement groups
and the newest tasks (each failure's exception and traceback folded under the tables),
refreshed every two seconds from the JSON endpoints (dashboard.py); it links to the
task graph (dashboard_graph_page.py) and the timeline (dashboard_timeline_page.py).
``/#task=ID`` also shows that task's attempts (the timeline links a run there).
Plain HTML and JavaScript, no external files: it works with no network but the head's.
Also the token login form (dashboard_auth.py)."""

import html

from .dashboard_views import PAGE_PART as VIEWS_PART
from .dashboard_views import SCRIPT as VIEWS_SCRIPT
from .page_head import page_head, page_top
from .profile_page import PROFILE_PANEL, PROFILE_SCRIPT

PAGE = (
    page_head("minray dashboard")
    + """  h2 { font-size: 1.1em; margin: 1.4em 0 0.4em; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #ddd;
           font-family: ui-monospace, monospace; font-size: 12px; }
  th { background: #f4f4f4; }
  .DEAD, .FAILED, .REMOVED { color: #b00; }
  .ALIVE, .FINISHED, .CREATED, .RUNNING { color: #070; }
  #status { color: #666; }
  #failures details { margin: 0.3em 0; }
  #failures summary { cursor: pointer; font-family: ui-monospace, monospace; font-size: 12px; }
  #failures pre { background: #fbeaea; padding: 0.6em; overflow: auto; font-size: 12px; }
"""
    + page_top("minray dashboard")
    + """<div id="status">loading...</div>
<h2>Nodes</h2><table id="nodes"></table>
<h2>Jobs</h2><table id="jobs"></table>
<h2>Actors</h2><table id="actors"></table>
<!--profile-panel-->
<div id="task-detail" hidden><h2 id="task-title">Task</h2><table id="task-rows"></table>
<pre id="task-error"></pre></div>
<h2>Tasks (newest 200)</h2><table id="tasks"></table>
<h2>Failed tasks</h2><div id="failures">(none)</div>
<h2>Placement groups</h2><table id="groups"></table>
<h2>Workers</h2><table id="workers"></table>
<!--views-panel-->
<!--profile-script-->
<script>
function cell(value) {
  if (value === null || value === undefined) return "-";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
function fill(id, rows, columns) {
  const table = document.getElementById(id);
  table.textContent = "";
  const head = table.insertRow();
  for (const [title] of columns) {
    const th = document.createElement("th"); th.textContent = title; head.appendChild(th);
  }
  if (!rows.length) {
    const td = table.insertRow().insertCell();
    td.colSpan = columns.length;
    td.textContent = "(none)";
  }
  for (const row of rows) {
    const tr = table.insertRow();
    for (const [, get] of columns) {
      const td = tr.insertCell(); const value = cell(get(row));
      td.textContent = value; td.className = value;
    }
  }
}
function used(node, name) {
  const total = (node.Resources || {})[name];
  if (total === undefined) return "-";
  return (total - ((node.AvailableResources || {})[name] || 0)) + "/" + total;
}
function duration(t) {
  if (!t.start_time_ms) return "";
  const ms = (t.end_time_ms || Date.now()) - t.start_time_ms;
  return ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(1) + " s";
}
let shownFailures = "";
function failures(tasks) {  // each failed task's exception, its traceback folded under it
  const failed = tasks.filter(t => t.state === "FAILED");
  // (redrawn only when that changes, so that an opened traceback stays open; the text
  // may come after the failure: the worker's events and the owner's travel apart)
  const key = failed.map(t => [t.task_id, t.attempt_number, (t.error_message || "").length]).join();
  if (key === shownFailures) return;
  shownFailures = key;
  const box = document.getElementById("failures");
  box.textContent = failed.length ? "" : "(none)";
  for (const t of failed) {
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    const message = (t.error_message || "").trim().split("\\n");
    summary.textContent = `${t.name} (task ${t.task_id.slice(0, 16)}, attempt ` +
      `${t.attempt_number}): ${t.exception_type || t.error_type} - ${message[message.length - 1]}`;
    const pre = document.createElement("pre");
    pre.textContent = t.error_message || "(no message: see the worker's log)";
    details.append(summary, pre);
    box.appendChild(details);
  }
}
const TASK_COLUMNS = [["task", t => t.task_id.slice(0, 16)],
  ["name", t => t.name], ["state", t => t.state],
  ["attempt", t => t.attempt_number + (t.attempt_reason ? ` (${t.attempt_reason})` : "")],
  ["type", t => t.type], ["node", t => (t.node_id || "").slice(0, 12)],
  ["worker", t => (t.worker_id || "").slice(0, 12)], ["worker pid", t => t.worker_pid],
  ["duration", duration], ["error", t => t.exception_type || t.error_type],
  ["why pending", t => t.pending_reason || ""]];
async function showTask() {  // "/#task=ID" (the timeline links here): that task's attempts
  const id = (location.hash.match(/^#task=([0-9a-f]+)$/) || [])[1];
  const box = document.getElementById("task-detail");
  box.hidden = !id;
  if (!id) return;
  document.getElementById("task-title").textContent = "Task " + id;
  const {tasks} = await json("/api/tasks?task_id=" + id);
  fill("task-rows", tasks, TASK_COLUMNS);
  const failed = tasks.filter(t => t.error_message);
  document.getElementById("task-error").textContent = failed.length
    ? failed[failed.length - 1].error_message : "";
  box.scrollIntoView();
}
function openTask() {
  showTask().catch(error => {
    document.getElementById("task-title").textContent = "cannot load the task: " + error;
  });
}
window.addEventListener("hashchange", openTask);
async function json(path) {
  const response = await fetch(path);
  if (response.status === 401) window.location.assign("/login");  // the login has lapsed
  if (!response.ok) throw new Error(path + ": " + response.status);
  return response.json();
}
async function refresh() {
  try {
    const [nodes, jobs, actors, tasks, groups, workers, objects] = await Promise.all([
      json("/api/nodes"), json("/api/jobs/"), json("/api/actors"),
      json("/api/tasks?limit=200"), json("/api/placement_groups"), json("/api/workers"),
      json("/api/objects")]);
    fill("nodes", nodes, [["node", n => n.NodeID.slice(0, 12)],
      ["address", n => n.NodeManagerAddress],
      ["state", n => n.Alive ? "ALIVE" : "DEAD"], ["head", n => n.IsHead ? "yes" : ""],
      ["CPU used", n => used(n, "CPU")], ["GPU used", n => used(n, "GPU")],
      ["why dead", n => n.DeathReasonMessage || ""]]);
    fill("jobs", jobs, [["job", j => j.submission_id || j.job_id], ["type", j => j.type],
      ["status", j => j.status], ["driver pid", j => j.driver_info ? j.driver_info.pid : ""],
      ["entrypoint", j => j.entrypoint], ["message", j => (j.message || "").split("\\n")[0]]]);
    fill("actors", actors.actors, [["actor", a => a.actor_id.slice(0, 12)],
      ["class", a => a.class_name],
      ["name", a => a.name], ["state", a => a.state], ["node", a => (a.node_id || "").slice(0, 12)],
      ["pid", a => a.pid], ["restarts", a => a.num_restarts],
      ["death", a => a.death_cause ? a.death_cause.message.split("\\n")[0] : ""],
      ["waiting for", a => a.pending_reason || ""]]);
    addProfileButtons("actors", actors.actors, "actor");
    const newest = tasks.tasks.slice().reverse();
    fill("tasks", newest, TASK_COLUMNS);
    failures(newest);
    fill("groups", groups, [["group", g => g.placement_group_id.slice(0, 12)],
      ["name", g => g.name],
      ["state", g => g.state], ["strategy", g => g.strategy], ["bundles", g => g.bundles]]);
    fill("workers", workers.workers, [["worker", w => w.worker_id.slice(0, 12)],
      ["type", w => w.worker_type], ["pid", w => w.pid], ["node", w => w.node_id.slice(0, 12)],
      ["actor", w => (w.actor_id || "").slice(0, 12)]]);
    addProfileButtons("workers", workers.workers, "worker");
    addLogButtons(workers.workers);
    fill("objects", objects.objects.slice(0, 500), [["object", o => o.object_id.slice(0, 16)],
      ["size", o => o.object_size < 0 ? "?" : o.object_size], ["reference", o => o.reference_type],
      ["task status", o => o.task_status],
      ["rebuilt", o => o.reconstructions ? `${o.reconstructions} time(s)` : ""],
      ["held by", o => `${o.type} pid ${o.pid}`],
      ["node", o => (o.node_id || "").slice(0, 12)], ["owner", o => o.owner],
      ["stored on", o => (o.stored_on_node || "").slice(0, 12)], ["call site", o => o.call_site]]);
    const missing = actors.missing.length
      ? " (nodes not answering: " + actors.missing.join(", ") + ")" : "";
    document.getElementById("status").textContent =
      "updated " + new Date().toLocaleTimeString() + " - " + tasks.total + " task attempts known" +
      (tasks.dropped ? ", " + tasks.dropped + " task events dropped" : "") + missing;
  } catch (error) {
    document.getElementById("status").textContent = "cannot reach the head: " + error;
  }
}
refresh();
openTask();
setInterval(refresh, 2000);
</script>
</body>
</html>
""".replace("<!--profile-panel-->", PROFILE_PANEL).replace("<!--profile-script-->", PROFILE_SCRIPT)
)
PAGE = PAGE.replace("<!--views-panel-->", VIEWS_PART + "<script>" + VIEWS_SCRIPT + "</script>")


def login_page(message: str) -> str:
    """The token login form (``message``: why the last try failed, or "")."""
    note = f'<p class="error">{html.escape(message)}</p>' if message else ""
    return LOGIN.replace("<!--message-->", note)


LOGIN = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>minray dashboard: log in</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 3em auto; max-width: 36em; color: #222; }
  input[type=password] { width: 100%; font-family: ui-monospace, monospace; padding: 4px; }
  .error { color: #b00; }
  code { background: #f4f4f4; padding: 1px 4px; }
</style>
</head>
<body>
<h1>minray dashboard</h1>
<!--message-->
<form method="post" action="/login">
  <p><label for="token">Cluster token</label></p>
  <p><input type="password" id="token" name="token" autocomplete="off" autofocus></p>
  <p><button type="submit">Log in</button></p>
</form>
<p>The token is the cluster's: <code>minray dashboard</code> prints it (for a cluster started
with <code>minray start --head</code> it is also in <code>~/.minray/auth_token</code>).</p>
</body>
</html>
"""
