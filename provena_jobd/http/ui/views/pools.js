// The pools: per job type, workers by state, waiting jobs, cold starts, and a live chart of
// jobs finished per second.

import { call } from "../api.js";
import { h } from "../dom.js";
import { rateChart } from "./chart.js";
import { pauseButton, schedulesSection } from "./flow.js";

const HISTORY = 60;

function clock(ms) {
  return new Date(ms).toLocaleTimeString();
}

// A provisioning worker's countdown, from the server's `ready_at` (epoch seconds).
function countdown(readyAt, now) {
  if (readyAt === null || readyAt === undefined) return null;
  const left = Math.max(0, Math.ceil(readyAt - now / 1000));
  return h("span", { class: "countdown" }, left ? `, ready in about ${left} s` : ", ready any moment");
}

// One line per worker (`worker_list`): its state, since when, a cold start's countdown, and
// for a process its pid; with several nodes on PostgreSQL, the cluster's workers on other
// nodes too (from `processes`) and the node hosting each.
function workerList(pool, now) {
  const items = (pool.worker_list || []).map((w) => {
    const jobs = w.jobs && w.state === "busy" ? `, ${w.jobs} job${w.jobs > 1 ? "s" : ""}` : "";
    return h("li", { "data-state": w.state, "data-pid": String(w.pid ?? ""), "data-worker-id": w.worker_id },
      `${w.worker_id}${w.pid ? ` (pid ${w.pid})` : ""}${w.node ? ` on ${w.node}` : ""}: ${w.state}${jobs}`,
      w.since ? ` since ${clock(w.since * 1000)}` : null,
      w.state === "provisioning" ? countdown(w.ready_at, now) : null);
  });
  for (const p of pool.processes || []) {
    if (p.state !== "on another node") continue; // this node's are in `worker_list`
    items.push(h("li", { "data-state": p.state, "data-worker-id": p.worker_id }, `${p.worker_id} on ${p.node}: ${p.state}`));
  }
  if (!items.length) items.push(h("li", { class: "muted" }, "No workers (the pool starts one when a job arrives)."));
  return h("ul", { class: "workers", "aria-label": `${pool.job_type} workers` }, ...items);
}

// A process pool whose worker processes keep failing to start (`start_backoff`): how many in
// a row, how the last ended, and when the next start is, in jobd's sentence (`jobd pool`'s
// and a waiting job's too).
function startBackoff(pool) {
  const b = pool.start_backoff;
  if (!b) return null;
  return h("p", { class: "error", "data-field": "start_backoff" }, b.message);
}

export async function poolsView(context) {
  const grid = h("div", { class: "pools", id: "pools" });
  const schedules = h("div", {});
  const history = new Map();
  const previous = new Map();
  let lastAt = null;

  async function refresh() {
    const [{ pools }, { paused }, listed] = await Promise.all([
      call("GET", "/admin/pool"), call("GET", "/admin/paused"), call("GET", "/admin/schedules")]);
    schedules.replaceChildren(schedulesSection(listed.schedules));
    const now = performance.now();
    const wall = Date.now();
    grid.replaceChildren(...pools.map((pool) => {
      const rates = history.get(pool.job_type) || [];
      if (lastAt !== null && previous.has(pool.job_type)) {
        const seconds = Math.max(0.001, (now - lastAt) / 1000);
        rates.push(Math.round((pool.jobs_finished - previous.get(pool.job_type)) / seconds));
        if (rates.length > HISTORY) rates.shift();
      }
      history.set(pool.job_type, rates);
      previous.set(pool.job_type, pool.jobs_finished);
      const w = pool.workers;
      return h("section", { class: "card", "data-job-type": pool.job_type, "aria-label": `${pool.job_type} pool` },
        h("h2", {}, pool.job_type),
        h("div", { class: "numbers" },
          h("span", {}, "Workers provisioning"), h("strong", { "data-field": "provisioning" }, String(w.provisioning)),
          h("span", {}, "Workers idle"), h("strong", { "data-field": "idle" }, String(w.idle)),
          h("span", {}, "Workers busy"), h("strong", { "data-field": "busy" }, String(w.busy)),
          h("span", {}, "Jobs waiting"), h("strong", { "data-field": "waiting" }, String(pool.waiting)),
          h("span", {}, "Jobs running"), h("strong", { "data-field": "running" }, String(pool.running_jobs)),
          h("span", {}, "Cold starts"), h("strong", { "data-field": "cold_starts" }, String(pool.cold_starts)),
          h("span", {}, "Jobs finished"), h("strong", { "data-field": "jobs_finished" }, String(pool.jobs_finished))),
        h("h3", {}, "Workers"),
        workerList(pool, wall),
        startBackoff(pool),
        h("h3", {}, "Jobs finished per second"),
        rateChart(rates, HISTORY, `${pool.job_type} jobs finished per second`),
        h("p", { class: "muted" },
          `max ${pool.settings.max_workers} workers × ${pool.settings.concurrency}, cold start ${pool.settings.cold_start_s} s, idle stop ${pool.settings.idle_timeout_s} s`),
        pauseButton(pool.job_type, paused.includes(pool.job_type), context.can("admin"), refresh));
    }));
    lastAt = now;
  }

  await refresh();
  context.every(1000, () => refresh().catch(() => {}));
  return h("div", {}, h("h1", {}, "Worker pools"), grid, schedules);
}
