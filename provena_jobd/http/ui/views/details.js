// One job: every field and timing, what its status means, info, payload and result,
// Retry and Cancel where they apply, links to its batch and workflow.

import { call } from "../api.js";
import { MEANING, TERMINAL, batchLink, duration, errorBox, h, jobLink, listLink, localTime, statusBadge, workflowLink } from "../dom.js";

const WAITING = new Set(["PENDING", "DEQUEUED"]);

// Why the job waits (the fetch's `waiting`), with a live countdown to `ready_at`.
function waitingNotice(waiting, job) {
  if (!waiting || !WAITING.has(job.status)) return [];
  const left = waiting.ready_at ? Math.ceil(waiting.ready_at - Date.now() / 1000) : null;
  const when = left === null ? "" : left > 0 ? `in about ${left} s` : "any moment now";
  const text = {
    cold_start: left === null ? waiting.message : `Waiting for a worker to finish starting (cold start): ready ${when}.`,
    scheduled: `Scheduled: waits until ${localTime(waiting.ready_at)} as launched; it may start ${when}.`,
    backing_off: `Backing off after a failed attempt: the next attempt is ${when}.`,
    // The message names the failure (exit code, failed starts in a row): keep it, count down.
    start_failing: waiting.message.replace(/in about \d+ s\.$/, `${when}.`),
  }[waiting.reason] || waiting.message;
  return [h("p", { class: "info waiting", id: "waiting", "data-reason": waiting.reason },
    h("strong", {}, "Why is it waiting? "), text)];
}

const OUTCOMES = {
  succeeded: "succeeded", failed: "failed", cancelled: "cancelled", lease_lost: "its worker was lost (lease expired)",
  requeued_at_shutdown: "returned to the queue as jobd shut down", returned: "returned to the queue before it ran", crash_suspect: "requeued as a suspect of a crash",
  retrying: "failed; retried",
};

// The attempts (`/history`) as a timeline: claimed, started, ended and how, by which worker.
function timeline(attempts) {
  if (!attempts.length) return h("p", { class: "muted", id: "timeline" }, "Not attempted yet.");
  return h("ol", { class: "timeline", id: "timeline" }, ...attempts.map((a, index) => {
    const steps = [
      ["Claimed", a.claimed_at], ["Started", a.started_at], ["Ended", a.ended_at],
    ].filter(([, at]) => at !== null).map(([name, at]) => h("li", {}, `${name} ${localTime(at)}`));
    if (a.retry_at !== null && !["requeued_at_shutdown", "returned"].includes(a.outcome)) steps.push(h("li", {}, `Next attempt not before ${localTime(a.retry_at)}`));
    const how = a.outcome ? OUTCOMES[a.outcome] || a.outcome : "running";
    return h("li", { class: `attempt o-${a.outcome || "running"}`, "data-attempt": String(index + 1) },
      h("strong", {}, `Attempt ${a.attempt}: ${how}`),
      a.worker_id ? h("span", { class: "muted" }, ` · worker ${a.worker_id}${a.node ? ` on ${a.node}` : ""}`) : null,
      h("ul", {}, ...steps),
      a.info && a.outcome !== "succeeded" ? h("div", { class: "muted" }, a.info) : null);
  }));
}

function jsonBlock(title, value, open) {
  return h("details", { open },
    h("summary", {}, title),
    h("pre", { class: "json" }, JSON.stringify(value, null, 2)));
}

export async function detailsView(context) {
  const sessionId = context.param;
  const route = context.admin ? "/jobs/admin/fetch" : "/jobs/user/fetch";
  const root = h("div");
  const feedback = h("div", { role: "status", "aria-live": "polite", id: "feedback" });
  const prefix = context.admin ? "/jobs/admin" : "/jobs/user";
  let confirming = false; // Cancel was clicked once and waits for "Yes, cancel it"
  let current = null;
  let waiting = null; // the last fetch's `waiting`
  const waitingBox = h("div", { role: "status", "aria-live": "polite" });
  const history = h("section", { class: "card", "aria-labelledby": "timeline-title" },
    h("h2", { id: "timeline-title" }, "Attempts"), h("p", { class: "muted" }, "…"));
  const historyRoute = context.admin ? "/jobs/admin/history" : "/jobs/user/history";

  async function loadHistory() {
    try {
      const answer = await call("GET", historyRoute, { params: { session_id: sessionId } });
      history.replaceChildren(history.firstChild, timeline(answer.attempts));
    } catch { /* keep the last timeline */ }
  }

  async function act(path, label) {
    try {
      const answer = await call("POST", path, { params: { session_id: sessionId } });
      if (answer.session_id) {
        location.hash = jobLink(answer.session_id, context.admin);
      } else {
        draw(answer.job);
        // A running job stops at its next check; a waiting one has already ended.
        // (`current`, not the reply: the event saying the job ended may have come first.)
        if (!TERMINAL.has(current.status)) feedback.replaceChildren(h("p", {}, `${label} requested.`));
      }
    } catch (error) {
      feedback.replaceChildren(errorBox(error));
    }
  }

  // Cancel asks first, in place: "Cancel job" becomes "Yes, cancel it" and "Keep it running".
  // Retry (only on a FAILED job) sits at the far end of the bar, so a double click on Cancel
  // never lands on it.
  function cancelControls(job) {
    if (TERMINAL.has(job.status)) return [];
    if (!confirming) {
      return [h("button", { type: "button", id: "cancel", onclick: () => { confirming = true; draw(current); } }, "Cancel job…")];
    }
    return [h("span", { class: "confirm", role: "group", "aria-label": "Confirm cancel" },
      "Cancel this job? ",
      h("button", { type: "button", class: "danger", id: "cancel-confirm", onclick: () => { confirming = false; act(`${prefix}/cancel`, "Cancel"); } }, "Yes, cancel it"),
      h("button", { type: "button", id: "cancel-keep", onclick: () => { confirming = false; draw(current); } }, "Keep it"))];
  }

  function reportLink(job) {
    const url = job.status === "SUCCEEDED" && job.result && job.result.report_url;
    if (typeof url !== "string" || !/^https?:\/\//.test(url)) return null;
    return h("p", {}, h("a", { href: url, id: "report-link", download: "" }, "Download the report"),
      h("span", { class: "muted" }, " (the link expires; generate the report again if it has)"));
  }

  function draw(job) {
    // A finished job never changes again, so an older answer (say the cancel's reply, which
    // can arrive after the event saying the job ended) must not draw it as running again.
    if (current && TERMINAL.has(current.status) && !TERMINAL.has(job.status)) return;
    current = job;
    // A notice such as "Cancel requested." is about a job still running; it goes when it ends.
    if (TERMINAL.has(job.status) && feedback.querySelector("p:not(.error)")) feedback.replaceChildren();
    const actions = [...cancelControls(job)];
    const retry = job.status === "FAILED"
      ? h("button", { type: "button", class: "primary end", id: "retry", onclick: () => act(`${prefix}/retry`, "Retry") }, "Retry")
      : null;
    const info = job.info
      ? h("div", { class: `info${job.status === "FAILED" ? " failed" : ""}`, id: "info" },
        job.status === "FAILED" ? `Error info: ${job.info}` : job.info)
      : null;
    const progress = job.progress !== null && job.progress !== undefined && !TERMINAL.has(job.status)
      ? h("label", {}, `Progress ${Math.round(job.progress * 100)}%`, h("progress", { max: "1", value: String(job.progress) }))
      : null;
    const parts = [
      h("h1", {}, "Job ", h("code", { class: "id-full" }, job.session_id)),
      h("p", {}, statusBadge(job.status), " ", h("span", { class: "muted", id: "meaning" }, MEANING[job.status])),
      waitingBox, info, progress, reportLink(job),
      h("div", { class: "toolbar actions" }, ...actions,
        h("a", { href: workflowLink(job.session_id, context.admin) }, "Workflow"),
        job.batch_id ? h("a", { href: batchLink(job.batch_id, context.admin) }, "Batch") : null,
        job.result && job.result.batch_id ? h("a", { href: batchLink(job.result.batch_id, context.admin) }, "Batch it launched") : null,
        h("a", { href: listLink(context.admin) }, "Job list"),
        retry),
      feedback,
      h("section", { class: "card", "aria-label": "Fields" }, h("dl", { class: "fields" },
        ...[
          ["Username", job.username], ["Session ID", job.session_id], ["Batch ID", job.batch_id || "—"],
          ["Job type", job.job_type], ["Job sub type", job.job_sub_type],
          ["Created", localTime(job.created_timestamp)], ["Started", localTime(job.started_timestamp)],
          ["Finished", localTime(job.finished_timestamp)],
          ["Ran for", duration(job.started_timestamp, job.finished_timestamp)],
          ["Attempt", String(job.attempt)],
          ["Launched by", job.parent_session_id ? h("a", { href: jobLink(job.parent_session_id, context.admin) }, job.parent_session_id) : "—"],
          ["Retry of", job.retry_of ? h("a", { href: jobLink(job.retry_of, context.admin) }, job.retry_of) : "—"],
        ].flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]))),
      history,
      jsonBlock("Input (payload)", job.payload, false),
      job.status === "SUCCEEDED" ? jsonBlock("Output (result)", job.result, true) : null,
    ];
    root.replaceChildren(...parts.filter((part) => part !== null));
    waitingBox.replaceChildren(...waitingNotice(waiting, job));
  }

  // A fetch gives the job and why it waits.
  async function refresh() {
    const answer = await call("GET", route, { params: { session_id: sessionId } });
    waiting = answer.waiting || null;
    draw(answer.job);
  }

  await Promise.all([refresh(), loadHistory()]);
  context.onJob((changed) => {
    if (changed.session_id !== sessionId) return;
    draw(changed);
    loadHistory(); // every status change is an attempt's step
    if (WAITING.has(changed.status)) refresh().catch(() => {}); // the reason may have changed
  });
  context.onPoll(() => Promise.all([refresh().catch(() => { /* keep the last view */ }), loadHistory()]));
  // The countdown ticks; every few seconds the reason is asked for again (a worker came up).
  let ticks = 0;
  context.every(1000, () => {
    if (!current || !WAITING.has(current.status)) return;
    if (++ticks % 5 === 0) refresh().catch(() => {});
    else waitingBox.replaceChildren(...waitingNotice(waiting, current));
  });
  return root;
}
