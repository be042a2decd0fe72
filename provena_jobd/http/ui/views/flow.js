// Issue 14 on the Pools page: a pause/resume button per job type, and the periodic
// schedules with their next run time.

import { call } from "../api.js";
import { h, localTime } from "../dom.js";

// The button of one pool: it pauses a running type and resumes a paused one. Only a caller
// with the admin right gets the button; everyone who sees the page sees that a type is paused.
export function pauseButton(jobType, paused, isAdmin, refresh) {
  const note = h("span", { class: "muted", role: "status" });
  const button = h("button", {
    "data-action": paused ? "resume" : "pause",
    onclick: async () => {
      button.disabled = true;
      try {
        await call("POST", paused ? "/admin/resume" : "/admin/pause", { params: { job_type: jobType } });
        await refresh();
      } catch (error) {
        note.textContent = ` ${error.message}`;
        button.disabled = false;
      }
    },
  }, paused ? `Resume ${jobType}` : `Pause ${jobType}`);
  return h("p", {},
    paused ? h("strong", { "data-field": "paused" }, "Paused: its waiting jobs stay PENDING. ") : null,
    isAdmin ? button : null, note);
}

// The [[schedules]] of jobd.toml: a table with each one's cron, job and next run.
export function schedulesSection(schedules) {
  if (!schedules.length) return h("section", { id: "schedules" });
  return h("section", { class: "card", id: "schedules", "aria-label": "schedules" },
    h("h2", {}, "Schedules"),
    h("table", {},
      h("thead", {}, h("tr", {}, ...["Name", "Cron (UTC)", "Job", "User", "Next run", "Last due"].map((t) => h("th", {}, t)))),
      h("tbody", {}, ...schedules.map((s) => h("tr", { "data-schedule": s.name },
        h("td", {}, s.name), h("td", {}, h("code", {}, s.cron)), h("td", {}, s.job_sub_type),
        h("td", {}, s.user), h("td", { "data-field": "next_run" }, localTime(s.next_run_at)),
        h("td", {}, localTime(s.last_due_at)))))));
}
