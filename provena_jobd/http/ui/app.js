// The jobs panel: a hash router over a few views, live from jobd's event stream.

import { ApiError, LiveFeed, call, setToken, token } from "./api.js";
import { h } from "./dom.js";
import { batchView } from "./views/batch.js";
import { detailsView } from "./views/details.js";
import { listView } from "./views/list.js";
import { poolsView } from "./views/pools.js";
import { workflowView } from "./views/workflow.js";

const state = { me: null, rights: new Set(), feed: null, cleanup: [] };

const routes = [
  [/^#\/jobs\/?(?:\?.*)?$/, () => listView],
  [/^#\/jobs\/([^/?]+)/, () => detailsView],
  [/^#\/batch\/([^/?]+)/, () => batchView],
  [/^#\/workflow\/([^/?]+)/, () => workflowView],
  [/^#\/pools\/?(?:\?.*)?$/, () => poolsView],
];

// The role names are configurable, so the panel asks the server which rights the caller has
// (each `/check-access/check-*-access` answers 200 only to a caller with that right).
const RIGHTS = ["read", "write", "admin"];

async function learnRights() {
  const answers = await Promise.allSettled(
    RIGHTS.map((right) => call("GET", `/check-access/check-${right}-access`)));
  state.rights = new Set(RIGHTS.filter((_, index) => answers[index].status === "fulfilled"));
}

function can(right) {
  return state.rights.has(right);
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
      // Admin mode lives in the URL (`?admin=1`), so a link or a reload keeps it.
      admin: query.get("admin") === "1" && can("read"),
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
    // Focus moves to the new page so screen readers start there, but it must not scroll: a
    // plain focus() scrolls <main> to the window's top, hiding the top bar on a long page. A
    // new page starts at its top instead, wherever the previous one was scrolled to.
    window.scrollTo(0, 0);
    view.focus({ preventScroll: true });
    return;
  }
  location.hash = "#/jobs";
}

async function whoAmI() {
  try {
    state.me = await call("GET", "/check-access/check-general-access");
    await learnRights();
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
