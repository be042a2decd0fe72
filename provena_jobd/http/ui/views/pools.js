// The pools: per job type, workers by state, waiting jobs, cold starts, and a live chart of
// jobs finished per second.

import { call } from "../api.js";
import { h } from "../dom.js";
import { pauseButton, schedulesSection } from "./flow.js";

const HISTORY = 60;

function sparkline(values) {
  const width = 240;
  const height = 48;
  const top = Math.max(1, ...values);
  const step = width / (HISTORY - 1);
  const points = values.map((v, i) => `${(i + HISTORY - values.length) * step},${height - (v / top) * (height - 4) - 2}`).join(" ");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", "100%");
  svg.setAttribute("height", String(height));
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `jobs finished per second, latest ${values.at(-1) ?? 0}, peak ${top}`);
  const axis = document.createElementNS("http://www.w3.org/2000/svg", "line");
  for (const [name, value] of [["x1", 0], ["y1", height - 1], ["x2", width], ["y2", height - 1]]) axis.setAttribute(name, String(value));
  axis.setAttribute("stroke", "#d9dde5");
  svg.append(axis);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points);
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#1f4e9c");
  line.setAttribute("stroke-width", "2");
  svg.append(line);
  return svg;
}

// Workers outside jobd (processes it started, or your own): id, pid and state.
function processList(processes) {
  if (!processes.length) return [];
  return [h("ul", { class: "processes", "aria-label": "worker processes" },
    ...processes.map((p) => h("li", { "data-pid": String(p.pid ?? "") },
      `${p.worker_id}${p.pid ? ` (pid ${p.pid})` : ""}: ${p.state}${p.jobs ? `, ${p.jobs} job${p.jobs > 1 ? "s" : ""}` : ""}`)))];
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
        h("p", { class: "muted" }, "Finished per second"),
        sparkline(rates),
        h("p", { class: "muted" },
          `max ${pool.settings.max_workers} workers × ${pool.settings.concurrency}, cold start ${pool.settings.cold_start_s} s, idle stop ${pool.settings.idle_timeout_s} s`),
        ...processList(pool.processes || []),
        pauseButton(pool.job_type, paused.includes(pool.job_type), refresh));
    }));
    lastAt = now;
  }

  await refresh();
  context.every(1000, () => refresh().catch(() => {}));
  return h("div", {}, h("h1", {}, "Worker pools"), grid, schedules);
}
