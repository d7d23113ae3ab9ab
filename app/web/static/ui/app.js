"use strict";

// The page talks to the same API as any client; the token lives in sessionStorage only.
const TOKEN_KEY = "recommender.token";
// A random key that stays with this browser (localStorage), sent with every request for recommendations:
// the unit of an experiment, so that one person stays with one model. It says nothing about the person.
const CLIENT_KEY = "recommender.client";
// The scores given in this session ([{movie, score}], sessionStorage): sent as rated with every request for
// recommendations, so that the next list learns from them and never shows a scored title again.
const RATED_KEY = "recommender.rated";
const MAX_RATED = 100;

function sessionScores() {
  return JSON.parse(sessionStorage.getItem(RATED_KEY) || "[]");
}

// The latest score of a title replaces an earlier one; past MAX_RATED, the oldest go.
function rememberScore(movie, score) {
  const kept = sessionScores().filter((entry) => entry.movie !== movie);
  kept.push({ movie, score });
  sessionStorage.setItem(RATED_KEY, JSON.stringify(kept.slice(-MAX_RATED)));
  element("more").hidden = false;
}

function clientKey() {
  let key = localStorage.getItem(CLIENT_KEY);
  if (!key) {
    key = crypto.randomUUID();
    localStorage.setItem(CLIENT_KEY, key);
  }
  return key;
}
const OCCUPATIONS = [
  "administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive",
  "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none", "other", "programmer",
  "retired", "salesman", "scientist", "student", "technician", "writer",
];

const element = (id) => document.getElementById(id);

function showError(message) {
  const area = element("error");
  area.textContent = message;
  area.hidden = !message;
}

function showSignedIn(signedIn) {
  element("login-form").hidden = signedIn;
  element("recommend-section").hidden = !signedIn;
  (signedIn ? element("age") : element("password")).focus();
}

class SessionExpired extends Error {}

// A 503 with Retry-After (the database restarting, or a score whose recommendation another replica is
// still copying in) is asked again after that many seconds, at most this many times.
const RETRIES = 5;

async function post(path, headers, body) {
  try {
    return await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
  } catch {
    throw new Error("The service cannot be reached: check your connection and try again.");
  }
}

async function callApi(path, body) {
  const headers = { "Content-Type": "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token && path !== "/api/login") {
    headers.Authorization = `Bearer ${token}`;
  }
  let response = await post(path, headers, body);
  for (let retry = 0; retry < RETRIES && response.status === 503; retry += 1) {
    const seconds = Number(response.headers.get("Retry-After"));
    if (!(seconds > 0)) {
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    response = await post(path, headers, body);
  }
  const answer = await response.json().catch(() => ({ message: `The service answered ${response.status}.` }));
  if (response.status === 401 && path !== "/api/login") {
    throw new SessionExpired(answer.message);
  }
  if (!response.ok) {
    throw new Error(answer.message || `The service answered ${response.status}.`);
  }
  return answer;
}

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(RATED_KEY);
  element("more").hidden = true;
  element("recommendations").replaceChildren();
  element("results-title").hidden = true;
  element("results-help").hidden = true;
  element("password").value = "";
  showSignedIn(false);
  showError(message);
}

async function handle(action) {
  try {
    showError("");
    await action();
  } catch (error) {
    if (error instanceof SessionExpired) {
      signOut(`Your session has ended (${error.message}): sign in again.`);
    } else {
      showError(error.message);
    }
  }
}

// A whole number stays a number; anything else goes as typed, so the API's message names the field.
function asWholeNumber(value) {
  return /^-?\d+$/.test(value.trim()) ? Number(value) : value;
}

// Each score control on the page, by recommendation id and title: the outbox (score-outbox.js) says how its
// score fares, "waiting to be saved" until the service has stored it.
const scoreControls = new Map();
const scoreKey = (id, movie) => `${id}\n${movie}`;

function showWaiting(count) {
  const line = element("outbox");
  line.textContent = count === 1 ? "1 score waiting to be saved" : `${count} scores waiting to be saved`;
  line.hidden = count === 0;
}

scoreOutbox.onChange((score, state, message, waiting) => {
  showWaiting(waiting);
  const control = scoreControls.get(scoreKey(score.id, score.movie));
  if (!control || (state !== "waiting" && control.item.dataset.score !== String(score.score))) {
    return;  // not on the page any more, or scored again since
  }
  control.saved.dataset.state = state;
  if (state === "waiting") {
    control.item.dataset.score = String(score.score);
    delete control.item.dataset.saved;
    control.saved.textContent = `Waiting to be saved: ${score.score}/5`;
  } else if (state === "stored") {
    control.item.dataset.saved = String(score.score);
    control.saved.textContent = `Saved: ${score.score}/5`;
  } else {
    control.saved.textContent = `Not saved: ${message}`;
  }
});

function scoreButtons(recommendationId, title, item) {
  const group = document.createElement("div");
  group.className = "scores";
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", `Score ${title}`);
  const saved = document.createElement("span");
  saved.className = "saved";
  saved.setAttribute("aria-live", "polite");
  scoreControls.set(scoreKey(recommendationId, title), { item, saved });
  for (let score = 1; score <= 5; score += 1) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = String(score);
    button.dataset.score = String(score);
    button.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-label", `${score} out of 5 for ${title}`);
    button.addEventListener("click", () => {
      for (const other of group.querySelectorAll("button")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
      scoreOutbox.add({ id: recommendationId, movie: title, score });
      rememberScore(title, score);
    });
    group.append(button);
  }
  group.append(saved);
  return group;
}

// Why the title: the API's reason, then the film's genres and year.
function reasonLines(reason, id) {
  const why = document.createElement("p");
  why.className = "reason";
  why.id = id;
  why.textContent = reason.text;
  const facts = document.createElement("p");
  facts.className = "facts";
  facts.textContent = [reason.genres.join(", "), reason.year].filter(Boolean).join(" · ");
  return [why, facts];
}

function showRecommendations(answer) {
  const list = element("recommendations");
  list.replaceChildren(...answer.recommendations.map((title, index) => {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "title";
    name.textContent = title;
    const reasonId = `reason-${index}`;
    const scores = scoreButtons(answer.id, title, item);
    scores.setAttribute("aria-describedby", reasonId);
    item.append(name, ...reasonLines(answer.reasons[index], reasonId), scores);
    return item;
  }));
  element("results-title").hidden = false;
  element("results-help").hidden = false;
}

// The form's person, and this session's scores: the first list, or the next one ("more like these").
async function recommend() {
  const rated = sessionScores();
  const answer = await callApi("/api/recommend", {
    age: asWholeNumber(element("age").value),
    gender: element("gender").value,
    occupation: element("occupation").value,
    max_recs: asWholeNumber(element("max-recs").value),
    explain: true,
    client: clientKey(),
    ...(rated.length ? { rated } : {}),
  });
  showRecommendations(answer);
}

function setUp() {
  const occupation = element("occupation");
  for (const name of OCCUPATIONS) {
    occupation.append(new Option(name, name));
  }
  occupation.value = "other";

  element("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    handle(async () => {
      const answer = await callApi("/api/login", { session_password: element("password").value });
      sessionStorage.setItem(TOKEN_KEY, answer.access_token);
      element("password").value = "";
      showSignedIn(true);
    });
  });

  element("recommend-form").addEventListener("submit", (event) => {
    event.preventDefault();
    handle(recommend);
  });
  element("more").addEventListener("click", () => handle(recommend));

  element("logout").addEventListener("click", () => signOut());
  element("more").hidden = sessionScores().length === 0;
  showSignedIn(Boolean(sessionStorage.getItem(TOKEN_KEY)));
  showWaiting(scoreOutbox.waiting().length);
  scoreOutbox.flush();  // what an earlier visit left unsaved
}

document.addEventListener("DOMContentLoaded", setUp);
