// A batch: a summary line and one progress bar by status, every member paged, errors per
// member, and a filter for the failed ones.

import { call } from "../api.js";
import { STATUSES, errorBox, h, jobLink, listLink, statusBadge } from "../dom.js";
import { batchBar, finishedOf } from "./batches.js";

const PAGE = 100;

export async function batchView(context) {
  const batchId = context.param;
  const prefix = context.admin ? "/jobs/admin" : "/jobs/user";
  const summaryBox = h("section", { class: "card", id: "summary", "aria-live": "polite" });
  const tbody = h("tbody");
  const members = new Map();
  const shown = h("p", { class: "muted", id: "members-shown", role: "status" });
  let key = null;
  let onlyFailed = false;
  const more = h("button", { type: "button", onclick: () => loadMembers(false) }, "Load more members");
  let refreshing = null;

  async function summary() {
    const s = await call("POST", `${prefix}/batch_summary`, { body: { batch_id: batchId } });
    const line = s.all_succeeded ? "All jobs in this batch succeeded!"
      : s.done ? "This batch contains jobs which did not finish successfully."
        : "This batch is pending completion, see below.";
    const bar = batchBar(s);
    bar.id = "batch-progress";
    summaryBox.replaceChildren(
      h("p", { id: "summary-line" }, h("strong", {}, line), ` ${finishedOf(s)} of ${s.total} finished.`),
      bar,
      h("div", { class: "legend" }, ...STATUSES.map((status) =>
        h("span", { "data-status": status }, statusBadge(status), ` ${s.counts[status] || 0}`))));
  }

  async function loadMembers(reset) {
    if (reset) { members.clear(); key = null; }
    do {
      const page = await call("POST", `${prefix}/list_batch`, { body: { batch_id: batchId, limit: PAGE, pagination_key: key } });
      for (const job of page.jobs) members.set(job.session_id, job);
      key = page.pagination_key;
      // Failed members may be on any page, so the failed filter reads the batch to its end.
    } while (onlyFailed && key !== null);
    more.disabled = key === null;
    drawMembers();
  }

  function drawMembers() {
    const rows = [...members.values()].filter((job) => !onlyFailed || job.status === "FAILED");
    tbody.replaceChildren(...rows.map((job) => h("tr", { "data-session-id": job.session_id },
      h("td", { "data-label": "Session ID" }, h("a", { class: "id", href: jobLink(job.session_id, context.admin), title: job.session_id }, job.session_id)),
      h("td", { "data-label": "Status" }, statusBadge(job.status)),
      h("td", { "data-label": "Error info", class: job.status === "FAILED" ? "" : "c-empty" }, job.status === "FAILED" ? job.info : ""))));
    shown.textContent = onlyFailed
      ? `${rows.length} failed member${rows.length === 1 ? "" : "s"}.`
      : `${rows.length} of the batch's members loaded.`;
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
  const failedFilter = h("label", { class: "check" },
    h("input", { type: "checkbox", id: "only-failed", onchange: async (e) => {
      onlyFailed = e.target.checked;
      try { if (onlyFailed && key !== null) await loadMembers(false); else drawMembers(); } catch (error) { shown.replaceChildren(errorBox(error)); }
    } }),
    "Only failed members");
  return h("div", {},
    h("h1", {}, "Batch ", h("code", { class: "id-full" }, batchId)),
    h("p", {}, h("a", { href: listLink(context.admin) }, "Job list")),
    summaryBox,
    h("div", { class: "toolbar" }, failedFilter),
    shown,
    h("table", { id: "members", class: "stack" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Session ID"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Error info"))),
      tbody),
    h("p", {}, more));
}
