// The pools: per job type, workers by state, waiting jobs, cold starts, and a live chart of
// jobs finished per second.

import { call } from "../api.js";
import { h } from "../dom.js";
import { rateChart } from "./chart.js";
import { pauseButton, schedulesSection } from "./flow.js";

const HISTORY = 60;

// `/admin/pool` counts in-process workers by state but gives no per-worker start time, so
// the panel remembers when it first saw each provisioning worker: its cold start countdown
// runs from then (an upper bound when the worker was already starting as the page opened).
class ColdStarts {
  constructor() { this.since = new Map(); } // job type -> first-seen times, oldest first

  update(jobType, provisioning, now) {
    const times = this.since.get(jobType) || [];
    while (times.length > provisioning) times.shift(); // the oldest finish their cold start first
    while (times.length < provisioning) times.push(now);
    this.since.set(jobType, times);
    return times;
  }
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString();
}

// One line per worker: in-process ones from the counts, outside ones (with pids) by name;
// with several nodes on PostgreSQL, every worker of the cluster and the node hosting it.
function workerList(pool, startedAt, now) {
  const coldStart = pool.settings.cold_start_s;
  const items = startedAt.map((since, index) => {
    const left = Math.max(0, Math.ceil(coldStart - (now - since) / 1000));
    return h("li", { "data-state": "provisioning" },
      h("strong", {}, `worker ${index + 1}: provisioning`),
      ` since ${clock(since)}`,
      h("span", { class: "countdown" }, left ? `, ready in about ${left} s` : ", ready any moment"));
  });
  for (const state of ["busy", "idle"]) {
    const count = pool.workers[state] || 0;
    if (count) items.push(h("li", { "data-state": state }, h("strong", {}, `${count} worker${count > 1 ? "s" : ""}: ${state}`)));
  }
  for (const p of pool.processes || []) {
    items.push(h("li", { "data-pid": String(p.pid ?? ""), "data-state": p.state },
      `${p.worker_id}${p.pid ? ` (pid ${p.pid})` : ""}${p.node ? ` on ${p.node}` : ""}: ${p.state}${p.jobs ? `, ${p.jobs} job${p.jobs > 1 ? "s" : ""}` : ""}`));
  }
  if (!items.length) items.push(h("li", { class: "muted" }, "No workers (the pool starts one when a job arrives)."));
  return h("ul", { class: "workers", "aria-label": `${pool.job_type} workers` }, ...items);
}

export async function poolsView(context) {
  const grid = h("div", { class: "pools", id: "pools" });
  const schedules = h("div", {});
  const history = new Map();
  const previous = new Map();
  const coldStarts = new ColdStarts();
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
      const provisioning = coldStarts.update(pool.job_type, w.provisioning, wall);
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
        workerList(pool, provisioning, wall),
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
