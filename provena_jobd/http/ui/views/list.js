// The job list: newest first, batches grouped, filters, live updates, Load More.

import { call } from "../api.js";
import { STATUSES, errorBox, h, jobLink, localTime, statusBadge } from "../dom.js";

const PAGE = 25;
const WAKE_UPS = [["PROV_LODGE", "PROV_LODGE_WAKE_UP"], ["REGISTRY", "REGISTRY_WAKE_UP"], ["EMAIL", "EMAIL_WAKE_UP"]];

function groupStatus(members) {
  if (members.some((j) => j.status === "FAILED")) return "FAILED";
  if (members.some((j) => j.status !== "SUCCEEDED")) return "IN_PROGRESS";
  return "SUCCEEDED";
}

export async function listView(context) {
  const jobs = new Map(); // session_id -> job
  // Ties on created_timestamp (whole seconds) keep the server's order: loaded jobs rank by
  // their place in the list, jobs first seen live rank above all of them, newest highest.
  const rank = new Map();
  let loadedCount = 0;
  let liveCount = 0;
  let key = null;
  let admin = context.admin && context.can("read");
  const filters = { status: "", subType: "", text: "" };

  const tbody = h("tbody");
  const more = h("button", { type: "button", onclick: () => load(false) }, "Load More");
  const message = h("div", { role: "status", "aria-live": "polite", class: "muted" });

  async function load(reset) {
    try {
      if (reset) { jobs.clear(); rank.clear(); loadedCount = 0; key = null; }
      const path = admin ? "/jobs/admin/list" : "/jobs/user/list";
      const page = await call("POST", path, { body: { limit: PAGE, pagination_key: key } });
      for (const job of page.jobs) {
        if (!rank.has(job.session_id)) rank.set(job.session_id, -++loadedCount);
        jobs.set(job.session_id, job);
      }
      key = page.pagination_key;
      more.disabled = key === null;
      draw();
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
  }

  function matches(job) {
    if (filters.status && job.status !== filters.status) return false;
    if (filters.subType && job.job_sub_type !== filters.subType) return false;
    if (filters.text) {
      const text = filters.text.toLowerCase();
      const haystack = [job.session_id, job.batch_id, job.username, job.job_sub_type, job.info].join(" ").toLowerCase();
      if (!haystack.includes(text)) return false;
    }
    return true;
  }

  function draw() {
    const ordered = [...jobs.values()].sort((a, b) =>
      b.created_timestamp - a.created_timestamp || rank.get(b.session_id) - rank.get(a.session_id));
    const rows = [];
    const batches = new Map();
    for (const job of ordered) {
      if (!matches(job)) continue;
      if (job.batch_id) {
        if (!batches.has(job.batch_id)) {
          const group = { batch: job.batch_id, members: [] };
          batches.set(job.batch_id, group);
          rows.push(group);
        }
        batches.get(job.batch_id).members.push(job);
      } else {
        rows.push({ job });
      }
    }
    tbody.replaceChildren(...rows.map((row) => {
      if (row.job) {
        const job = row.job;
        return h("tr", { "data-session-id": job.session_id },
          h("td", {}, h("a", { href: jobLink(job.session_id, admin) }, job.session_id)),
          h("td", { class: "hide-narrow" }, job.username),
          h("td", {}, job.job_sub_type),
          h("td", {}, statusBadge(job.status)),
          h("td", { class: "hide-narrow" }, "Standalone"),
          h("td", { class: "hide-narrow" }, "1"),
          h("td", {}, localTime(job.created_timestamp)));
      }
      const first = row.members[0];
      return h("tr", { "data-batch-id": row.batch },
        h("td", {}, h("a", { href: `#/batch/${encodeURIComponent(row.batch)}${admin ? "?admin=1" : ""}` }, row.batch)),
        h("td", { class: "hide-narrow" }, first.username),
        h("td", {}, first.job_sub_type),
        h("td", {}, statusBadge(groupStatus(row.members))),
        h("td", { class: "hide-narrow" }, "Batch"),
        h("td", { class: "hide-narrow" }, String(row.members.length)),
        h("td", {}, localTime(first.created_timestamp)));
    }));
    message.textContent = rows.length ? "" : "No jobs to show.";
  }

  context.onJob((job) => {
    const mine = admin || (context.me && job.username === context.me.username);
    if (!mine) return;
    if (!rank.has(job.session_id)) rank.set(job.session_id, ++liveCount);
    jobs.set(job.session_id, job);
    draw();
  });
  context.onPoll(() => load(true));

  const statusFilter = h("select", { id: "filter-status", onchange: (e) => { filters.status = e.target.value; draw(); } },
    h("option", { value: "" }, "Any status"), ...STATUSES.map((s) => h("option", { value: s }, s)));
  const subTypes = ["PROV_LODGE_WAKE_UP", "MODEL_RUN_PROV_LODGE", "MODEL_RUN_LODGE_ONLY", "MODEL_RUN_BATCH_SUBMIT",
    "LODGE_CREATE_ACTIVITY", "LODGE_VERSION_ACTIVITY", "MODEL_RUN_UPDATE", "MODEL_RUN_UPDATE_LODGE_ONLY",
    "REGISTRY_WAKE_UP", "REGISTER_CREATE_ACTIVITY", "REGISTER_VERSION_ACTIVITY", "EMAIL_WAKE_UP", "SEND_EMAIL",
    "GENERATE_REPORT"];
  const subTypeFilter = h("select", { id: "filter-sub-type", onchange: (e) => { filters.subType = e.target.value; draw(); } },
    h("option", { value: "" }, "Any job type"), ...subTypes.map((s) => h("option", { value: s }, s)));
  const textFilter = h("input", { id: "filter-text", type: "search", placeholder: "id, user, info…",
    oninput: (e) => { filters.text = e.target.value; draw(); } });
  const adminToggle = context.can("read") ? h("label", {},
    "Admin list mode",
    h("input", { type: "checkbox", id: "admin-mode", checked: admin,
      onchange: (e) => { admin = e.target.checked; load(true); } })) : null;

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

  await load(true);
  return h("div", {},
    h("h1", {}, "Job history"),
    h("p", { class: "muted" }, "Jobs you launched, newest first. Statuses update live; click a job for its details, or a batch for its members."),
    wakers,
    h("div", { class: "toolbar", role: "search" },
      h("button", { type: "button", class: "primary", onclick: () => load(true) }, "Refresh"),
      h("label", {}, "Status", statusFilter),
      h("label", {}, "Job type", subTypeFilter),
      h("label", {}, "Search", textFilter),
      adminToggle),
    h("table", { id: "jobs" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "ID"), h("th", { scope: "col", class: "hide-narrow" }, "Username"),
        h("th", { scope: "col" }, "Job type"), h("th", { scope: "col" }, "Status"),
        h("th", { scope: "col", class: "hide-narrow" }, "Kind"), h("th", { scope: "col", class: "hide-narrow" }, "Count"),
        h("th", { scope: "col" }, "Created"))),
      tbody),
    message,
    h("p", {}, more));
}
