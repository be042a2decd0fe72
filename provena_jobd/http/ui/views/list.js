// The job list: newest first, a batch as one row, filters and search run by the server over
// every job the caller may see, live updates, Load More.

import { call } from "../api.js";
import { STATUSES, batchLink, errorBox, h, jobLink, localTime, statusBadge } from "../dom.js";
import { BatchSummaries, batchBar, batchStatus } from "./batches.js";

const PAGE = 25;
const MAX_FIRST_PAGES = 20; // first load: pages fetched at most while filling the screen
const ROW_PX = 34; // a row's height on a wide screen, to know how many rows fill it
const WAKE_UPS = [["PROV_LODGE", "PROV_LODGE_WAKE_UP"], ["REGISTRY", "REGISTRY_WAKE_UP"], ["EMAIL", "EMAIL_WAKE_UP"]];

export async function listView(context) {
  const jobs = new Map(); // session_id -> job
  // Ties on created_timestamp (whole seconds) keep the server's order: loaded jobs rank by
  // their place in the list, jobs first seen live rank above all of them, newest highest.
  const rank = new Map();
  let loadedCount = 0;
  let liveCount = 0;
  let key = null;
  const admin = context.admin;
  const prefix = admin ? "/jobs/admin" : "/jobs/user";
  const filters = { status: "", subType: "", text: "" };
  // A batch row shows the whole batch (from batch_summary), not the members loaded so far.
  const summaries = new BatchSummaries(prefix, () => draw());

  const tbody = h("tbody");
  const more = h("button", { type: "button", onclick: () => load(false) }, "Load More");
  const message = h("div", { role: "status", "aria-live": "polite", class: "muted" });
  const subTypeFilter = h("select", { id: "filter-sub-type", onchange: (e) => { filters.subType = e.target.value; load(true); } },
    h("option", { value: "" }, "Any job type"));
  let searchTimer = null;
  let loads = 0; // resets so far; a page answered for an older one is dropped

  // The server filters (a key is valid only with the filters it came with) and lists a batch
  // once, at its newest matching job.
  function listBody() {
    const body = { limit: PAGE, pagination_key: key, group_batches: true };
    if (filters.status) body.status = filters.status;
    if (filters.subType) body.job_sub_type = filters.subType;
    if (filters.text.trim()) body.search = filters.text.trim();
    return body;
  }

  // Fetches the next page; false if a newer reset (a filter changed) made it stale.
  async function page(generation) {
    const answer = await call("POST", `${prefix}/list`, { body: listBody() });
    if (generation !== loads) return false;
    for (const job of answer.jobs) {
      if (!rank.has(job.session_id)) rank.set(job.session_id, -++loadedCount);
      jobs.set(job.session_id, job);
    }
    // The page brings its batches' whole counts: no batch_summary request per batch.
    for (const [batchId, counts] of Object.entries(answer.batches || {})) summaries.seed(batchId, counts);
    key = answer.pagination_key;
    return true;
  }

  // Loads one page, or on a reset as many pages as fill the screen with rows (a batch's
  // members make one row, so a big batch could otherwise leave the first screen nearly empty).
  async function load(reset) {
    const generation = reset ? ++loads : loads;
    try {
      if (reset) {
        const wanted = Math.max(10, Math.ceil(window.innerHeight / ROW_PX));
        // A refresh keeps at least as many jobs as were loaded, so it does not shrink the list.
        const shown = Math.min(Math.max(loadedCount, 1), PAGE * MAX_FIRST_PAGES);
        jobs.clear(); rank.clear(); loadedCount = 0; key = null;
        for (let pages = 0; pages < MAX_FIRST_PAGES; pages++) {
          if (!await page(generation)) return;
          if (key === null || (rowsOf(true).length >= wanted && loadedCount >= shown)) break;
        }
      } else if (!await page(generation)) {
        return;
      }
      more.disabled = key === null;
      more.textContent = key === null ? "All jobs loaded" : "Load More";
      draw();
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
  }

  // Loaded jobs matched on the server; this keeps a live change honest (a job that left the
  // filtered status drops out). Text search is the server's alone (it also reads payloads).
  function matches(job) {
    if (filters.status && job.status !== filters.status) return false;
    if (filters.subType && job.job_sub_type !== filters.subType) return false;
    return true;
  }

  // The rows to show, newest first: one per standalone job, one per batch (with the members
  // that match the filters, so a filtered batch can say how many of its jobs match).
  function rowsOf(all = false) {
    const ordered = [...jobs.values()].sort((a, b) =>
      b.created_timestamp - a.created_timestamp || rank.get(b.session_id) - rank.get(a.session_id));
    const rows = [];
    const batches = new Map();
    for (const job of ordered) {
      if (!all && !matches(job)) continue;
      if (!job.batch_id) { rows.push({ job }); continue; }
      if (!batches.has(job.batch_id)) {
        const group = { batch: job.batch_id, members: [] };
        batches.set(job.batch_id, group);
        rows.push(group);
      }
      batches.get(job.batch_id).members.push(job);
    }
    return rows;
  }

  function cell(label, content, extra = {}) {
    return h("td", { "data-label": label, ...extra }, content);
  }

  function batchRow(row) {
    const first = row.members[0];
    const summary = summaries.get(row.batch);
    const size = summary ? String(summary.total) : "…";
    // The size is the whole batch's; a status filter adds how many of it are in that status.
    const count = summary && filters.status ? `${size} (${summary.counts[filters.status] || 0} match)` : size;
    return h("tr", { "data-batch-id": row.batch },
      cell("ID", h("a", { class: "id", href: batchLink(row.batch, admin), title: row.batch }, row.batch)),
      cell("User", first.username, { class: "c-user" }),
      cell("Job type", first.job_sub_type, { class: "c-type" }),
      cell("Status", [summary ? statusBadge(batchStatus(summary)) : "…", summary ? batchBar(summary, "mini") : null], { class: "c-status" }),
      cell("Kind", "Batch", { class: "c-kind" }),
      cell("Count", count, { class: "c-count" }),
      cell("Created", localTime(first.created_timestamp), { class: "c-created" }));
  }

  function jobRow(job) {
    return h("tr", { "data-session-id": job.session_id },
      cell("ID", h("a", { class: "id", href: jobLink(job.session_id, admin), title: job.session_id }, job.session_id)),
      cell("User", job.username, { class: "c-user" }),
      cell("Job type", job.job_sub_type, { class: "c-type" }),
      cell("Status", statusBadge(job.status), { class: "c-status" }),
      cell("Kind", "Standalone", { class: "c-kind" }),
      cell("Count", "1", { class: "c-count" }),
      cell("Created", localTime(job.created_timestamp), { class: "c-created" }));
  }

  // Every sub type this jobd accepts (built-in and config-declared), not just those loaded.
  async function loadSubTypes() {
    try {
      const catalog = await call("GET", "/jobs/catalog");
      const subTypes = Object.keys(catalog.sub_types).sort();
      subTypeFilter.append(...subTypes.map((subType) => h("option", { value: subType }, subType)));
    } catch { /* the filter offers "Any job type" only */ }
  }

  function draw() {
    const rows = rowsOf();
    for (const row of rows) if (row.batch) summaries.want(row.batch);
    tbody.replaceChildren(...rows.map((row) => (row.job ? jobRow(row.job) : batchRow(row))));
    const filtered = filters.status || filters.subType || filters.text.trim();
    message.textContent = rows.length ? "" : filtered ? "No jobs match." : "No jobs to show.";
  }

  context.onJob((job) => {
    const mine = admin || (context.me && job.username === context.me.username);
    if (!mine) return;
    // A new job under a text search shows on the next load, when the server has matched it.
    if (!rank.has(job.session_id) && filters.text.trim()) return;
    if (!rank.has(job.session_id)) rank.set(job.session_id, ++liveCount);
    jobs.set(job.session_id, job);
    if (job.batch_id) summaries.changed(job.batch_id);
    draw();
  });
  context.onPoll(() => load(true)); // the reload brings fresh batch counts with it

  const statusFilter = h("select", { id: "filter-status", onchange: (e) => { filters.status = e.target.value; load(true); } },
    h("option", { value: "" }, "Any status"), ...STATUSES.map((s) => h("option", { value: s }, s)));
  const textFilter = h("input", { id: "filter-text", type: "search", placeholder: "id, user, info…",
    oninput: (e) => {
      filters.text = e.target.value;
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => load(true), 250);
    } });
  // The mode is part of the URL: toggling it navigates, so links and reloads keep it.
  const adminToggle = context.can("read") ? h("label", { class: "check" },
    h("input", { type: "checkbox", id: "admin-mode", checked: admin,
      onchange: (e) => { location.hash = e.target.checked ? "#/jobs?admin=1" : "#/jobs"; } }),
    "Admin list mode (every user's jobs)") : null;

  const wakers = context.can("write") ? h("section", { class: "card", "aria-labelledby": "waker-title" },
    h("h2", { id: "waker-title" }, "Job waker"),
    h("p", { class: "muted" }, "Start a worker now, so the next job of that type does not wait for a cold start."),
    h("div", { class: "waker" }, ...WAKE_UPS.map(([type, sub]) => {
      const result = h("span", { role: "status" });
      return h("span", {},
        h("button", { type: "button", onclick: async () => {
          try {
            await call("POST", "/jobs/admin/launch", { body: { job_type: type, job_sub_type: sub, job_payload: { reason: "jobs panel" } } });
            result.textContent = " ✓";
          } catch (error) { result.textContent = ` ✗ ${error.message}`; }
        } }, `Wake up ${type}`), result);
    }))) : null;

  await Promise.all([load(true), loadSubTypes()]);
  await summaries.ready();
  return h("div", {},
    h("h1", {}, admin ? "Job history (all users)" : "Job history"),
    h("p", { class: "muted" }, "Newest first. Statuses update live; click a job for its details, or a batch for its members."),
    wakers,
    h("div", { class: "toolbar", role: "search" },
      h("button", { type: "button", class: "primary", onclick: () => load(true) }, "Refresh"),
      h("label", {}, "Status", statusFilter),
      h("label", {}, "Job type", subTypeFilter),
      h("label", {}, "Search all jobs", textFilter),
      adminToggle),
    h("table", { id: "jobs", class: "stack" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "ID"), h("th", { scope: "col", class: "c-user" }, "Username"),
        h("th", { scope: "col", class: "c-type" }, "Job type"), h("th", { scope: "col", class: "c-status" }, "Status"),
        h("th", { scope: "col", class: "c-kind" }, "Kind"), h("th", { scope: "col", class: "c-count" }, "Count"),
        h("th", { scope: "col", class: "c-created" }, "Created"))),
      tbody),
    message,
    h("p", {}, more));
}
