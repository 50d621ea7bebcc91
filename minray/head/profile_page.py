"""The page's part for profiling (dashboard_page.py includes it): "Stack" and "Profile"
buttons on each live actor's and worker's row, and the panel that shows the result.

Stable names for scripts and browser tests: ``button.stack`` and ``button.profile``
with ``data-actor-id`` or ``data-worker-id`` (the full hex id); the seconds to
profile in ``#profile-seconds``; what is happening in ``#profile-status``; the
result in ``#profile-result`` (a ``<pre>`` of stacks, or the flame graph's
``<svg>``). The buttons call the routes of dashboard_profile.py.
"""

PROFILE_PANEL = """<h2>Stack and profile</h2>
<div id="profile-panel">
<label>Profile for <input id="profile-seconds" type="number" value="5" min="0.1" max="60"
  step="0.1" style="width: 5em"> s</label>
<span id="profile-status">Choose "Stack" or "Profile" on an actor or a worker.</span>
<div id="profile-result"></div>
</div>"""

PROFILE_SCRIPT = """<style>
  button.stack, button.profile { font-size: 11px; padding: 0 5px; margin-right: 3px; }
  #profile-result pre { background: #f8f8f8; padding: 6px; overflow-x: auto; font-size: 12px; }
  #profile-result svg { max-width: 100%; height: auto; }
  #profile-status { color: #666; margin-left: 1em; }
</style>
<script>
// Adds a cell of buttons to each row that fill() just drew for `rows` (kind "actor" or
// "worker"); only live actors get them.
function addProfileButtons(tableId, rows, kind) {
  const table = document.getElementById(tableId);
  if (!rows.length || table.rows.length !== rows.length + 1) return;
  const th = document.createElement("th"); th.textContent = "inspect";
  table.rows[0].appendChild(th);
  rows.forEach((row, i) => {
    const td = table.rows[i + 1].insertCell();
    if (kind === "actor" && row.state !== "ALIVE") return;
    for (const [name, label] of [["stack", "Stack"], ["profile", "Profile"]]) {
      const button = document.createElement("button");
      button.type = "button"; button.className = name; button.textContent = label;
      button.dataset[kind + "Id"] = row[kind + "_id"];
      td.appendChild(button);
    }
  });
}
async function showProfile(button) {
  const kind = button.dataset.actorId ? "actor" : "worker";
  const id = button.dataset.actorId || button.dataset.workerId;
  const status = document.getElementById("profile-status");
  const result = document.getElementById("profile-result");
  const profiling = button.classList.contains("profile");
  const seconds = document.getElementById("profile-seconds").value || "5";
  status.textContent = profiling
    ? "profiling " + kind + " " + id.slice(0, 12) + " for " + seconds + " s..."
    : "reading the stacks of " + kind + " " + id.slice(0, 12) + "...";
  const path = "/api/" + kind + "s/" + id + (profiling
    ? "/profile?duration=" + encodeURIComponent(seconds) : "/stack");
  try {
    const response = await fetch(path, {method: profiling ? "POST" : "GET"});
    if (!response.ok) {
      const body = await response.json().catch(() => ({error: response.statusText}));
      status.textContent = response.status + ": " + body.error;
      return;
    }
    result.textContent = "";
    if (profiling) {
      result.innerHTML = await response.text();  // our own SVG: labels are escaped
    } else {
      const pre = document.createElement("pre");
      pre.textContent = (await response.json()).text;
      result.appendChild(pre);
    }
    status.textContent = (profiling ? "flame graph of " : "stacks of ") + kind + " " +
      id.slice(0, 12) + " at " + new Date().toLocaleTimeString() +
      (profiling ? " (hover a box for its samples)" : "");
  } catch (error) {
    status.textContent = "cannot reach the head: " + error;
  }
}
document.addEventListener("click", event => {
  const button = event.target.closest("button.stack, button.profile");
  if (button) showProfile(button);
});
</script>"""
