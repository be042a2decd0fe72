// A batch as a whole: its counts by status (`batch_summary`), the status and the bar they give.

import { call } from "../api.js";
import { h } from "../dom.js";

const BAR_ORDER = ["SUCCEEDED", "FAILED", "IN_PROGRESS", "DEQUEUED", "PENDING"];

// One status for a whole batch: finished ones by outcome; otherwise running if any member
// runs, else PENDING (a batch waiting for a cold start is not "in progress").
export function batchStatus(summary) {
  const count = (status) => summary.counts[status] || 0;
  if (summary.done) return summary.all_succeeded ? "SUCCEEDED" : "FAILED";
  if (count("IN_PROGRESS") || count("DEQUEUED") || count("SUCCEEDED") || count("FAILED")) return "IN_PROGRESS";
  return "PENDING";
}

export function finishedOf(summary) {
  return (summary.counts.SUCCEEDED || 0) + (summary.counts.FAILED || 0);
}

// The one bar of a batch: a segment per status, as wide as its share of the batch.
export function batchBar(summary, size = "") {
  const finished = finishedOf(summary);
  return h("div", {
    class: `bar ${size}`, role: "progressbar", "aria-valuemin": "0", "aria-valuemax": String(summary.total),
    "aria-valuenow": String(finished), "aria-label": `${finished} of ${summary.total} finished`,
  }, ...BAR_ORDER.map((status) =>
    h("span", { class: `b-${status}`, style: `width:${summary.total ? (100 * (summary.counts[status] || 0)) / summary.total : 0}%` })));
}

// Summaries of the batches on screen, fetched once each and again (debounced) when a member
// changes; `onChange` redraws.
export class BatchSummaries {
  constructor(prefix, onChange) {
    this.prefix = prefix;
    this.onChange = onChange;
    this.known = new Map();
    this.pending = new Map();
    this.timers = new Map();
  }

  get(batchId) { return this.known.get(batchId); }

  want(batchId) {
    if (!this.known.has(batchId) && !this.pending.has(batchId)) this.fetch(batchId);
  }

  fetch(batchId) {
    const request = call("POST", `${this.prefix}/batch_summary`, { body: { batch_id: batchId } })
      .then((summary) => { this.known.set(batchId, summary); this.onChange(); })
      .catch(() => { /* the row keeps "…" until the next change or refresh */ })
      .finally(() => this.pending.delete(batchId));
    this.pending.set(batchId, request);
  }

  changed(batchId) {
    if (this.timers.has(batchId)) return;
    this.timers.set(batchId, setTimeout(() => { this.timers.delete(batchId); this.fetch(batchId); }, 250));
  }

  // Counts that came with a list page (`group_batches`): no request of its own needed.
  seed(batchId, counts) {
    const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
    const finished = (counts.SUCCEEDED || 0) + (counts.FAILED || 0);
    this.known.set(batchId, {
      batch_id: batchId, total, counts,
      done: total > 0 && finished === total,
      all_succeeded: total > 0 && (counts.SUCCEEDED || 0) === total,
    });
  }

  // Resolves when the summaries asked for so far have arrived (so the first screen is whole).
  async ready() { await Promise.allSettled([...this.pending.values()]); }
}
