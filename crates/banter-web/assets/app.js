// The video page: live comments over Phoenix Channels, "N watching", posting, and sign up /
// sign in / sign out over the REST API with access-token refresh. Uses only the API the stock
// `phoenix` client also has, so either client can be served as ./phoenix.js.
//
// A refreshed access token goes to the open socket in-band (`access_token` on the `phoenix`
// topic), so a refresh costs no reconnect: no "N watching" dip, nothing missed. The tabs of one
// browser share one refresh (a Web Lock around it, and the stored tokens, which every tab
// adopts when another one changes them).
// Every piece of user text goes through textContent: nothing is parsed as HTML.

import { Socket } from "./phoenix.js";

const AUTH_KEY = "banter.auth";
const REFRESH_MARGIN_MS = 60_000;
const $ = (selector) => document.querySelector(selector);

const videoId = document.body.dataset.video;
const topic = `comments:${videoId}`;
const list = $("#comments");
const statusLine = $("#status");
const watching = $("#watching");
const notice = $("#notice");
const form = $("#post-form");
const textarea = $("#post-body");
const postError = $("#post-error");

// ---- Signed-in state ------------------------------------------------------------------

let auth = loadAuth();
let refreshTimer = null;
let tokenRef = null; // the ref of the in-band token push awaiting its reply

function loadAuth() {
  try {
    return JSON.parse(localStorage.getItem(AUTH_KEY));
  } catch {
    return null;
  }
}

function saveAuth(tokens, username) {
  auth = {
    access: tokens.access_token,
    refresh: tokens.refresh_token,
    expiresAt: Date.now() + tokens.expires_in * 1000,
    username: username ?? auth?.username,
  };
  localStorage.setItem(AUTH_KEY, JSON.stringify(auth));
  scheduleRefresh();
  renderAuth();
}

function clearAuth(message) {
  auth = null;
  localStorage.removeItem(AUTH_KEY);
  clearTimeout(refreshTimer);
  renderAuth(message);
}

// Refresh the access token shortly before it expires, then hand it to the open socket.
function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!auth) return;
  // A minute early for ordinary tokens; at 80 % of the lifetime for short ones.
  const lifetime = auth.expiresAt - Date.now();
  const early = lifetime > 2 * REFRESH_MARGIN_MS ? lifetime - REFRESH_MARGIN_MS : lifetime * 0.8;
  const wait = Math.max(1000, early);
  refreshTimer = setTimeout(refresh, wait);
}

// One refresh at a time across this browser's tabs: a tab that waited for the lock finds the
// tokens another tab just stored and takes those instead of spending its own refresh token.
async function refresh() {
  if (!auth) return;
  const spent = auth.refresh;
  const run = async () => {
    const stored = loadAuth();
    if (stored && stored.refresh !== spent && stored.expiresAt - Date.now() > 5000) {
      adopt(stored);
      return;
    }
    if (!stored) {
      clearAuth("You signed out in another tab.");
      reconnect();
      return;
    }
    try {
      const tokens = await api("/api/auth/refresh", { refresh_token: spent });
      saveAuth(tokens);
      sendToken();
    } catch (error) {
      if (error.status === 401) {
        clearAuth("Your session has ended. Sign in again to comment.");
        reconnect();
      } else {
        // Network trouble: try again soon with the same refresh token.
        refreshTimer = setTimeout(refresh, 5000);
      }
    }
  };
  if (navigator.locks) await navigator.locks.request("banter-refresh", run);
  else await run();
}

// Tokens another tab stored (a refresh or a new sign-in) replace ours.
function adopt(stored) {
  const sameUser = auth && stored.username === auth.username;
  auth = stored;
  scheduleRefresh();
  renderAuth();
  if (sameUser) sendToken();
  else reconnect();
}

// The socket keeps going on the fresh token; if it refuses it, reconnect with it instead.
function sendToken() {
  if (!socket || !auth || !socket.isConnected()) return; // the next connect sends it anyway
  tokenRef = socket.makeRef();
  socket.push({ topic: "phoenix", event: "access_token", payload: { token: auth.access }, ref: tokenRef });
}

function onSocketMessage({ topic, event, payload, ref }) {
  if (topic !== "phoenix" || event !== "phx_reply" || ref !== tokenRef) return;
  tokenRef = null;
  if (payload.status !== "ok") reconnect();
}

window.addEventListener("storage", (event) => {
  if (event.key !== AUTH_KEY) return;
  const stored = loadAuth();
  if (!stored) {
    if (auth) {
      clearAuth("You signed out in another tab.");
      reconnect();
    }
  } else if (!auth || stored.access !== auth.access) {
    adopt(stored);
  }
});

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "network", "Cannot reach the server. Check your connection.");
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const e = data.error || {};
    throw new ApiError(response.status, e.code || "error", e.message || `The server said ${response.status}.`);
  }
  return data;
}

function renderAuth(message) {
  const signedIn = Boolean(auth);
  $("#signed-out").hidden = signedIn;
  $("#signed-in").hidden = !signedIn;
  $("#who").textContent = signedIn ? auth.username : "";
  textarea.disabled = !signedIn;
  form.querySelector("button").disabled = !signedIn;
  textarea.placeholder = signedIn ? "Say something nice" : "Sign in to comment";
  $("#auth-error").textContent = message || "";
}

async function signUp(event) {
  event.preventDefault();
  const f = event.target;
  try {
    const tokens = await api("/api/auth/register", {
      email: f.email.value,
      username: f.username.value,
      password: f.password.value,
    });
    saveAuth(tokens, f.username.value);
    f.reset();
    reconnect();
  } catch (error) {
    $("#auth-error").textContent = error.message;
  }
}

async function signIn(event) {
  event.preventDefault();
  const f = event.target;
  try {
    const tokens = await api("/api/auth/login", { login: f.login.value, password: f.password.value });
    saveAuth(tokens, f.login.value.includes("@") ? f.login.value.split("@")[0] : f.login.value);
    f.reset();
    reconnect();
  } catch (error) {
    $("#auth-error").textContent = error.message;
  }
}

async function signOut() {
  const refreshToken = auth?.refresh;
  clearAuth();
  reconnect();
  if (refreshToken) await api("/api/auth/logout", { refresh_token: refreshToken }).catch(() => {});
}

// ---- Comments ---------------------------------------------------------------------------

let lastSeq = 0;
const bySeq = new Map();

function renderComment(li, c) {
  // Pending comments have no seq yet and stay out of the ordered, numbered list.
  if (c.seq) {
    li.dataset.seq = c.seq;
    li.dataset.id = c.id;
  }
  li.classList.toggle("deleted", Boolean(c.deleted));
  const author = li.querySelector(".author") || li.appendChild(document.createElement("span"));
  author.className = "author";
  author.textContent = c.author?.username ?? "someone";
  const body = li.querySelector(".body") || li.appendChild(document.createElement("p"));
  body.className = "body";
  body.textContent = c.deleted ? "This comment was deleted." : c.body;
  const meta = li.querySelector(".meta") || li.appendChild(document.createElement("span"));
  meta.className = "meta";
  meta.textContent = c.edited ? "edited" : "";
}

function insert(c) {
  if (bySeq.has(c.seq)) return;
  const li = document.createElement("li");
  renderComment(li, c);
  bySeq.set(c.seq, li);
  // Keep the list ordered by seq; new comments almost always go last.
  let after = null;
  for (const node of list.querySelectorAll("li[data-seq]")) {
    if (Number(node.dataset.seq) > c.seq) {
      after = node;
      break;
    }
  }
  list.insertBefore(li, after ?? $("#pending-anchor"));
  lastSeq = Math.max(lastSeq, c.seq);
}

function update(c) {
  const li = bySeq.get(c.seq);
  if (li) renderComment(li, c);
}

// ---- Skipped runs (the server's delivery budget on a very hot video) -----------------------

const PAGE = 100;

// A placeholder "N comments skipped — show" for seqs from..to, in seq order in the list.
function markSkipped({ from_seq: from, to_seq: to }) {
  let missing = 0;
  for (let seq = from; seq <= to; seq += 1) if (!bySeq.has(seq)) missing += 1;
  lastSeq = Math.max(lastSeq, to);
  if (missing === 0) return; // all shown already (your own, or in the join's page)
  const li = document.createElement("li");
  li.className = "skipped";
  li.dataset.seq = from;
  li.dataset.to = to;
  const button = li.appendChild(document.createElement("button"));
  button.type = "button";
  button.className = "show-skipped";
  li.dataset.remaining = missing;
  button.textContent = `${missing} comments skipped — show`;
  button.addEventListener("click", () => showSkipped(li));
  let after = null;
  for (const node of list.querySelectorAll("li[data-seq]")) {
    if (Number(node.dataset.seq) > from) {
      after = node;
      break;
    }
  }
  list.insertBefore(li, after ?? $("#pending-anchor"));
}

// Loads a skipped run from REST, a page at a time; the placeholder shrinks to what is left.
async function showSkipped(li) {
  const button = li.querySelector("button");
  button.disabled = true;
  const from = Number(li.dataset.seq);
  const to = Number(li.dataset.to);
  try {
    const url = `/api/videos/${encodeURIComponent(videoId)}/comments?after=${from - 1}&before=${to + 1}&limit=${PAGE}`;
    const page = await fetch(url);
    if (!page.ok) throw new Error(`HTTP ${page.status}`);
    const { comments } = await page.json();
    const loadedTo = comments.length ? comments[comments.length - 1].seq : to;
    li.remove();
    comments.forEach(insert);
    if (loadedTo < to) markSkipped({ from_seq: loadedTo + 1, to_seq: to });
  } catch {
    button.disabled = false;
    button.textContent = `${li.dataset.remaining} comments skipped — could not load, retry`;
  }
}

function replaceAll(comments) {
  for (const li of bySeq.values()) li.remove();
  bySeq.clear();
  lastSeq = 0;
  comments.forEach(insert);
}

// ---- Socket ---------------------------------------------------------------------------

let socket = null;
let channel = null;

function setStatus(text, live) {
  statusLine.textContent = text;
  statusLine.classList.toggle("live", live);
}

function connect() {
  socket = new Socket("/socket", { params: () => (auth ? { token: auth.access } : {}) });
  socket.onOpen(() => setStatus("Live", true));
  socket.onClose((event) => {
    setStatus("Reconnecting…", false);
    // 4001: the session ended (signed out elsewhere, device revoked, password changed):
    // reconnect without it. 4002: the token expired before a refresh reached the socket.
    if (event && event.code === 4001 && auth) {
      clearAuth("Your session has ended. Sign in again to comment.");
    } else if (event && event.code === 4002 && auth) {
      refresh();
    }
  });
  socket.onMessage(onSocketMessage);
  socket.connect();
  // On every (re)join, ask only for what came after the last comment shown.
  channel = socket.channel(topic, () => (lastSeq > 0 ? { since_seq: lastSeq } : {}));
  channel.on("comment_created", (c) => {
    if (lastSeq > 0 && c.seq > lastSeq + 1) fillGap(c);
    else insert(c);
  });
  channel.on("comments_skipped", markSkipped);
  channel.on("comment_updated", update);
  channel.on("comment_deleted", update);
  channel.on("viewer_count", ({ count }) => showWatching(count));
  // The server closed the topic: this viewer may no longer watch it (made private, membership
  // removed, role taken away).
  channel.onClose((payload) => {
    if (payload && payload.reason) setStatus(joinRefusal(payload.reason), false);
  });
  channel
    .join()
    .receive("ok", ({ comments, viewers, recovered, skipped = [] }) => {
      if (recovered === false) {
        notice.textContent = "You were away for a while: showing the latest comments.";
        replaceAll(comments);
      } else {
        comments.forEach(insert);
        skipped.forEach(markSkipped);
      }
      showWatching(viewers);
    })
    .receive("error", ({ reason }) => setStatus(joinRefusal(reason), false));
}

// A comment after a gap (not expected: the server sends every seq in order) fetches the gap.
async function fillGap(c) {
  const from = lastSeq;
  try {
    const page = await fetch(`/api/videos/${encodeURIComponent(videoId)}/comments?after=${from}&limit=100`);
    if (page.ok) (await page.json()).comments.forEach(insert);
  } finally {
    insert(c);
  }
}

function reconnect() {
  if (!socket) return;
  socket.disconnect(() => socket.connect());
}

function showWatching(count) {
  if (typeof count === "number") watching.textContent = `${count} watching`;
}

function joinRefusal(reason) {
  switch (reason) {
    case "private video":
      return "This video is private.";
    case "unauthorized":
      return "Sign in to watch this video.";
    default:
      return `Cannot show comments: ${reason}.`;
  }
}

function postRefusal(reason, message) {
  switch (reason) {
    case "rate_limited":
      return "You are commenting too fast. Wait a moment, then try again.";
    case "unauthorized":
      return "You are signed out. Sign in to comment.";
    case "invalid payload":
      return message || "That comment cannot be posted.";
    default:
      return message || `Not posted: ${reason}.`;
  }
}

function post(event) {
  event.preventDefault();
  postError.textContent = "";
  const body = textarea.value;
  if (!auth) {
    postError.textContent = "You are signed out. Sign in to comment.";
    return;
  }
  if (!body.trim()) return;
  const pending = document.createElement("li");
  pending.className = "pending";
  renderComment(pending, { author: { username: auth.username }, body });
  pending.querySelector(".meta").textContent = "sending…";
  list.appendChild(pending);
  textarea.value = "";
  channel
    .push("new_comment", { body })
    .receive("ok", ({ comment }) => {
      pending.remove();
      insert(comment);
    })
    // Not posted: the text goes back into the box, with the reason beneath it.
    .receive("error", ({ reason, message }) => {
      pending.remove();
      postError.textContent = postRefusal(reason, message);
      textarea.value = body;
    })
    .receive("timeout", () => {
      pending.remove();
      postError.textContent = "No answer from the server. Check your connection and try again.";
      textarea.value = body;
    });
}

// ---- Wiring ---------------------------------------------------------------------------

$("#signup-form").addEventListener("submit", signUp);
$("#signin-form").addEventListener("submit", signIn);
$("#signout").addEventListener("click", signOut);
form.addEventListener("submit", post);
textarea.addEventListener("keydown", (event) => {
  // Ctrl/Cmd+Enter posts from the keyboard.
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
});
renderAuth();
if (auth) {
  if (auth.expiresAt - Date.now() < 5000) refresh();
  else scheduleRefresh();
}
connect();
