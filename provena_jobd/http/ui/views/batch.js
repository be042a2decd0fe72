// A batch: a summary line and a progress bar by status, every member paged, errors per member.

import { call } from "../api.js";
import { STATUSES, errorBox, h, jobLink, statusBadge } from "../dom.js";

const PAGE = 100;

export async function batchView(context) {
  const batchId = context.param;
  const prefix = context.admin ? "/jobs/admin" : "/jobs/user";
  const summaryBox = h("section", { class: "card", id: "summary", "aria-live": "polite" });
  const tbody = h("tbody");
  const members = new Map();
  let key = null;
  const more = h("button", { type: "button", onclick: () => loadMembers(false) }, "Load more members");
  let refreshing = null;

  async function summary() {
    const s = await call("POST", `${prefix}/batch_summary`, { body: { batch_id: batchId } });
    const finished = (s.counts.SUCCEEDED || 0) + (s.counts.FAILED || 0);
    const line = s.all_succeeded ? "All jobs in this batch succeeded!"
      : s.done ? "This batch contains jobs which did not finish successfully."
        : "This batch is pending completion, see below.";
    summaryBox.replaceChildren(
      h("p", { id: "summary-line" }, h("strong", {}, line), ` ${finished} of ${s.total} finished.`),
      h("div", { class: "bar", role: "img", "aria-label": `${finished} of ${s.total} finished` },
        ...["SUCCEEDED", "FAILED", "IN_PROGRESS", "DEQUEUED", "PENDING"].map((status) =>
          h("span", { class: `b-${status}`, style: `width:${s.total ? (100 * (s.counts[status] || 0)) / s.total : 0}%` }))),
      h("progress", { id: "batch-progress", max: String(s.total || 1), value: String(finished) }),
      h("div", { class: "legend" }, ...STATUSES.map((status) =>
        h("span", { "data-status": status }, statusBadge(status), ` ${s.counts[status] || 0}`))));
  }

  async function loadMembers(reset) {
    if (reset) { members.clear(); key = null; }
    const page = await call("POST", `${prefix}/list_batch`, { body: { batch_id: batchId, limit: PAGE, pagination_key: key } });
    for (const job of page.jobs) members.set(job.session_id, job);
    key = page.pagination_key;
    more.disabled = key === null;
    drawMembers();
  }

  function drawMembers() {
    tbody.replaceChildren(...[...members.values()].map((job) => h("tr", { "data-session-id": job.session_id },
      h("td", {}, h("a", { href: jobLink(job.session_id, context.admin) }, job.session_id)),
      h("td", {}, statusBadge(job.status)),
      h("td", {}, job.status === "FAILED" ? job.info : ""))));
  }

  function refreshSoon() {
    if (refreshing) return;
    refreshing = setTimeout(async () => { refreshing = null; try { await summary(); } catch { /* next event retries */ } }, 250);
  }

  context.onJob((job) => {
    if (job.batch_id !== batchId) return;
    if (members.has(job.session_id)) { members.set(job.session_id, job); drawMembers(); }
    refreshSoon();
  });
  context.onPoll(() => { summary().catch(() => {}); });

  try {
    await Promise.all([summary(), loadMembers(true)]);
  } catch (error) {
    return errorBox(error);
  }
  return h("div", {},
    h("h1", {}, "Batch ", h("code", {}, batchId)),
    h("p", {}, h("a", { href: "#/jobs" }, "Job list")),
    summaryBox,
    h("table", { id: "members" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Session ID"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Error info"))),
      tbody),
    h("p", {}, more));
}

