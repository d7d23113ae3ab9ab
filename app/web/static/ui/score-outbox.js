"use strict";

// Every score a person gives is kept in localStorage until the service has stored it, and sent again, with
// backoff (1 s, then twice as long each time up to LONGEST_RETRY_MS), through a database outage, a replica that
// has not copied the recommendation in yet, a lost network, or a reload of the page. A score leaves the outbox
// only once it is stored (200) or refused (a 4xx other than 401, which waits for the person to sign in again).
// The page shows each score "waiting to be saved" until then, and how many are waiting.
const OUTBOX_KEY = "recommender.outbox";
const FIRST_RETRY_MS = 1000;
const LONGEST_RETRY_MS = 10000;

const scoreOutbox = (() => {
  const listeners = [];
  let retryMs = FIRST_RETRY_MS;
  let timer = null;
  let sending = false;

  const sameScore = (a, b) => a.id === b.id && a.movie === b.movie;
  const waiting = () => JSON.parse(localStorage.getItem(OUTBOX_KEY) || "[]");
  const keep = (scores) => localStorage.setItem(OUTBOX_KEY, JSON.stringify(scores));
  const tell = (score, state, message = "") => {
    for (const listener of listeners) {
      listener(score, state, message, waiting().length);
    }
  };

  // "stored", "refused" (with the service's message), or the milliseconds to wait before the next try.
  async function send(score) {
    const headers = { "Content-Type": "application/json" };
    const token = sessionStorage.getItem("recommender.token");
    if (token) {
      headers.Authorization = `Bearer ${token}`;
    }
    let response;
    try {
      response = await fetch("/api/recommend/score", { method: "POST", headers, body: JSON.stringify(score) });
    } catch {
      return { retryMs };
    }
    if (response.ok) {
      return { state: "stored" };
    }
    if (response.status >= 400 && response.status < 500 && response.status !== 401) {
      const answer = await response.json().catch(() => ({}));
      return { state: "refused", message: answer.message || `The service answered ${response.status}.` };
    }
    // Never sooner than the service asks (Retry-After), and later each time it still cannot store.
    const asked = Number(response.headers.get("Retry-After")) * 1000;
    return { retryMs: asked > retryMs ? asked : retryMs };
  }

  // Sends the waiting scores in order, the first one first; when it must wait, all wait and are tried again.
  async function flush() {
    if (sending) {
      return;
    }
    sending = true;
    clearTimeout(timer);
    try {
      for (let [score] = waiting(); score; [score] = waiting()) {
        const outcome = await send(score);
        if (outcome.retryMs !== undefined) {
          timer = setTimeout(flush, outcome.retryMs);
          retryMs = Math.min(retryMs * 2, LONGEST_RETRY_MS);
          return;
        }
        // Scored again while this one was on its way: the newer score stays, and goes next.
        keep(waiting().filter((other) => !(sameScore(other, score) && other.score === score.score)));
        tell(score, outcome.state, outcome.message);
      }
      retryMs = FIRST_RETRY_MS;
    } finally {
      sending = false;
    }
  }

  window.addEventListener("online", () => flush());

  return {
    // Keeps a score (replacing an earlier one for the same title of the same recommendation) and sends it.
    add(score) {
      keep([...waiting().filter((other) => !sameScore(other, score)), score]);
      tell(score, "waiting");
      flush();
    },
    waiting,
    // listener(score, "waiting" | "stored" | "refused", message, how many wait)
    onChange(listener) {
      listeners.push(listener);
    },
    flush,
  };
})();
