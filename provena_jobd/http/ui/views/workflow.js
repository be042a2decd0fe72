// A job's workflow: each step a card coloured by status, joined by arrows, updating live.

import { call } from "../api.js";
import { h, jobLink, listLink, localTime, statusBadge } from "../dom.js";

export async function workflowView(context) {
  const route = context.admin ? "/jobs/admin/workflow" : "/jobs/user/workflow";
  const root = h("div");
  let stepIds = new Set();

  async function load() {
    const flow = await call("GET", route, { params: { session_id: context.param } });
    stepIds = new Set(flow.steps.map((s) => s.session_id));
    const overall = flow.steps.some((s) => s.status === "FAILED") ? "This workflow has a failed step."
      : flow.done ? "This workflow has finished successfully." : "This workflow is in progress.";
    // Each step after the first carries its own arrow (drawn by CSS: "→" beside the previous
    // card, "↓" below it when the cards stack), so a wrap never leaves an arrow pointing wrong.
    const cards = flow.steps.map((step, index) =>
      h("a", { class: `step s-${step.status}`, href: jobLink(step.session_id, context.admin), "data-session-id": step.session_id },
        h("strong", {}, `${index + 1}. ${step.job_sub_type}`), h("br"),
        statusBadge(step.status), h("br"),
        h("small", { class: "id" }, step.session_id), h("br"),
        h("small", { class: "muted" }, localTime(step.created_timestamp))));
    root.replaceChildren(
      h("h1", {}, "Workflow"),
      h("p", { id: "workflow-state", "aria-live": "polite" }, overall),
      h("ol", { class: "flow", "aria-label": "Workflow steps" },
        ...cards.map((card) => h("li", {}, card))),
      h("p", {}, h("a", { href: listLink(context.admin) }, "Job list")));
  }

  await load();
  // A finishing step may launch the next one, so any change to a step (or a new job) reloads.
  context.onJob((job) => {
    if (stepIds.has(job.session_id) || (job.parent_session_id && stepIds.has(job.parent_session_id))) {
      load().catch(() => {});
    }
  });
  context.onPoll(() => load().catch(() => {}));
  return root;
}

