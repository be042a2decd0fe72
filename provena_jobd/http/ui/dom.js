// Small DOM helpers shared by the views.

export const TERMINAL = new Set(["SUCCEEDED", "FAILED"]);
export const STATUSES = ["PENDING", "DEQUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED"];
export const MEANING = {
  PENDING: "Waiting in the queue to run.",
  DEQUEUED: "A worker has taken the job from the queue and is about to run it.",
  IN_PROGRESS: "The job is running.",
  SUCCEEDED: "The job finished successfully.",
  FAILED: "The job did not finish successfully; the information below says why.",
};

// h("a", {href: "#"}, "text", child) builds an element; attributes starting with "on" are
// event listeners.
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (key === "class") element.className = value;
    else element.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function statusBadge(status) {
  return h("span", { class: `status s-${status}` }, status.replace("_", " "));
}

export function localTime(epochSeconds) {
  if (epochSeconds === null || epochSeconds === undefined) return "—";
  return new Date(epochSeconds * 1000).toLocaleString();
}

export function duration(from, to) {
  if (from === null || from === undefined || to === null || to === undefined) return "—";
  const seconds = to - from;
  return seconds < 1 ? `${Math.round(seconds * 1000)} ms` : `${seconds.toFixed(2)} s`;
}

// Links keep admin mode (`?admin=1`), which lives in the URL.
export function jobLink(sessionId, admin) {
  return `#/jobs/${encodeURIComponent(sessionId)}${admin ? "?admin=1" : ""}`;
}

export function batchLink(batchId, admin) {
  return `#/batch/${encodeURIComponent(batchId)}${admin ? "?admin=1" : ""}`;
}

export function workflowLink(sessionId, admin) {
  return `#/workflow/${encodeURIComponent(sessionId)}${admin ? "?admin=1" : ""}`;
}

export function listLink(admin) {
  return `#/jobs${admin ? "?admin=1" : ""}`;
}

export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, `Error: ${error.message}`);
}
