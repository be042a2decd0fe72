// One job: every field and timing, what its status means, info, payload and result,
// Retry and Cancel where they apply, links to its batch and workflow.

import { call } from "../api.js";
import { MEANING, TERMINAL, duration, errorBox, h, jobLink, localTime, statusBadge } from "../dom.js";

function jsonBlock(title, value, open) {
  return h("details", { open },
    h("summary", {}, title),
    h("pre", { class: "json" }, JSON.stringify(value, null, 2)));
}

export async function detailsView(context) {
  const sessionId = context.param;
  const route = context.admin ? "/jobs/admin/fetch" : "/jobs/user/fetch";
  const root = h("div");
  const feedback = h("div", { role: "status", "aria-live": "polite" });

  async function act(path, label) {
    try {
      const answer = await call("POST", path, { params: { session_id: sessionId } });
      if (answer.session_id) {
        location.hash = jobLink(answer.session_id, context.admin);
      } else {
        draw(answer.job);
        feedback.replaceChildren(h("p", {}, `${label} requested.`));
      }
    } catch (error) {
      feedback.replaceChildren(errorBox(error));
    }
  }

  function draw(job) {
    const prefix = context.admin ? "/jobs/admin" : "/jobs/user";
    const actions = [];
    if (job.status === "FAILED") {
      actions.push(h("button", { type: "button", class: "primary", id: "retry", onclick: () => act(`${prefix}/retry`, "Retry") }, "Retry"));
    }
    if (!TERMINAL.has(job.status)) {
      actions.push(h("button", { type: "button", id: "cancel", onclick: () => act(`${prefix}/cancel`, "Cancel") }, "Cancel"));
    }
    const info = job.info
      ? h("div", { class: `info${job.status === "FAILED" ? " failed" : ""}`, id: "info" },
        job.status === "FAILED" ? `Error info: ${job.info}` : job.info)
      : null;
    const progress = job.progress !== null && job.progress !== undefined && !TERMINAL.has(job.status)
      ? h("label", {}, `Progress ${Math.round(job.progress * 100)}%`, h("progress", { max: "1", value: String(job.progress) }))
      : null;
    const parts = [
      h("h1", {}, "Job ", h("code", {}, job.session_id)),
      h("p", {}, statusBadge(job.status), " ", h("span", { class: "muted", id: "meaning" }, MEANING[job.status])),
      info, progress,
      h("div", { class: "toolbar" }, ...actions,
        h("a", { href: `#/workflow/${encodeURIComponent(job.session_id)}${context.admin ? "?admin=1" : ""}` }, "Workflow"),
        job.batch_id ? h("a", { href: `#/batch/${encodeURIComponent(job.batch_id)}${context.admin ? "?admin=1" : ""}` }, "Batch") : null,
        job.result && job.result.batch_id ? h("a", { href: `#/batch/${encodeURIComponent(job.result.batch_id)}${context.admin ? "?admin=1" : ""}` }, "Batch it launched") : null,
        h("a", { href: "#/jobs" }, "Job list")),
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
      jsonBlock("Input (payload)", job.payload, false),
      job.status === "SUCCEEDED" ? jsonBlock("Output (result)", job.result, true) : null,
    ];
    root.replaceChildren(...parts.filter((part) => part !== null));
  }

  const job = (await call("GET", route, { params: { session_id: sessionId } })).job;
  draw(job);
  context.onJob((changed) => { if (changed.session_id === sessionId) draw(changed); });
  context.onPoll(async () => {
    try { draw((await call("GET", route, { params: { session_id: sessionId } })).job); } catch { /* keep the last view */ }
  });
  return root;
}
