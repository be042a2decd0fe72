// Talking to jobd: JSON calls with the session's token, and a live change feed that falls
// back to polling when the event stream drops.

const TOKEN_KEY = "jobd.token";

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra = {}) {
  const result = { ...extra };
  const current = token();
  if (current) result.Authorization = `Bearer ${current}`;
  return result;
}

export async function call(method, path, { params, body } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params || {})) url.searchParams.set(key, value);
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  if (!response.ok) throw new ApiError(response.status, data ? data.detail : response.statusText);
  return data;
}

// Calls every listener with each changed job. Uses the server-sent event stream (read with
// fetch, so the Authorization header goes along); while it is down, `poll` runs every 2 s.
export class LiveFeed {
  constructor(onStatus, path = "/jobs/user/events") {
    this.path = path;
    this.listeners = new Set();
    this.onStatus = onStatus;
    this.poller = null;
    this.pollers = new Set();
    this.stopped = false;
  }

  subscribe(listener) { this.listeners.add(listener); return () => this.listeners.delete(listener); }
  addPoll(poll) { this.pollers.add(poll); return () => this.pollers.delete(poll); }

  emit(job) { for (const listener of this.listeners) listener(job); }

  startPolling() {
    if (this.poller) return;
    this.poller = setInterval(() => { for (const poll of this.pollers) poll(); }, 2000);
  }

  stopPolling() { clearInterval(this.poller); this.poller = null; }

  async run() {
    while (!this.stopped) {
      try {
        const response = await fetch(this.path, { headers: headers() });
        if (!response.ok) throw new Error(`events: ${response.status}`);
        this.onStatus("live");
        this.stopPolling();
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const message = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = message.split("\n").filter((l) => l.startsWith("data: "));
            if (data.length) this.emit(JSON.parse(data.map((l) => l.slice(6)).join("\n")));
          }
        }
        throw new Error("event stream ended");
      } catch (error) {
        this.onStatus("polling");
        this.startPolling();
        await new Promise((resolve) => setTimeout(resolve, 3000));
      }
    }
  }
}
