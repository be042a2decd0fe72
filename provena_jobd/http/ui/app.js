// The jobs panel: a hash router over a few views, live from jobd's event stream.

import { ApiError, LiveFeed, call, setToken, token } from "./api.js";
import { h } from "./dom.js";
import { batchView } from "./views/batch.js";
import { detailsView } from "./views/details.js";
import { listView } from "./views/list.js";
import { poolsView } from "./views/pools.js";
import { workflowView } from "./views/workflow.js";

const state = { me: null, feed: null, cleanup: [] };

const routes = [
  [/^#\/jobs\/?$/, () => listView],
  [/^#\/jobs\/([^/?]+)/, () => detailsView],
  [/^#\/batch\/([^/?]+)/, () => batchView],
  [/^#\/workflow\/([^/?]+)/, () => workflowView],
  [/^#\/pools\/?$/, () => poolsView],
];

function can(right) {
  const roles = new Set(state.me ? state.me.roles : []);
  const names = { read: "job-service-read", write: "job-service-write", admin: "job-service-admin" };
  if (right === "write") return roles.has(names.read) && roles.has(names.write);
  return roles.has(names[right]);
}

async function render() {
  for (const undo of state.cleanup.splice(0)) undo();
  const view = document.getElementById("view");
  const hash = location.hash || "#/jobs";
  const query = new URLSearchParams(hash.split("?")[1] || "");
  for (const [pattern, pick] of routes) {
    const match = hash.match(pattern);
    if (!match) continue;
    const context = {
      me: state.me,
      can,
      admin: query.get("admin") === "1",
      param: match[1] ? decodeURIComponent(match[1]) : null,
      onJob: (listener) => state.cleanup.push(state.feed.subscribe(listener)),
      onPoll: (poll) => state.cleanup.push(state.feed.addPoll(poll)),
      every: (ms, fn) => { const id = setInterval(fn, ms); state.cleanup.push(() => clearInterval(id)); },
    };
    view.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    try {
      view.replaceChildren(await pick()(context));
    } catch (error) {
      view.replaceChildren(h("p", { class: "error", role: "alert" }, `Error: ${error.message}`));
    }
    view.focus();
    return;
  }
  location.hash = "#/jobs";
}

async function whoAmI() {
  try {
    state.me = await call("GET", "/check-access/check-general-access");
    document.getElementById("token-panel").hidden = true;
    return true;
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    const panel = document.getElementById("token-panel");
    panel.hidden = false;
    document.getElementById("token-error").textContent = token() ? `The token was refused: ${error.message}` : "";
    document.getElementById("token-input").focus();
    return false;
  }
}

async function main() {
  document.getElementById("token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    setToken(document.getElementById("token-input").value.trim());
    if (await whoAmI()) start();
  });
  if (await whoAmI()) start();
}

function start() {
  const live = document.getElementById("live");
  // Readers may see every user's jobs (admin list mode), so they follow every change.
  const path = can("read") ? "/jobs/admin/events" : "/jobs/user/events";
  state.feed = new LiveFeed((status) => {
    live.textContent = status === "live" ? "● live" : "○ reconnecting (polling)";
    live.dataset.state = status;
  }, path);
  state.feed.run();
  window.addEventListener("hashchange", render);
  render();
}

main();
