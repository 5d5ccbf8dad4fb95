// The video page: live comments over Phoenix Channels, "N watching", posting, and sign up /
// sign in / sign out over the REST API with access-token refresh. The list behaves like a live
// chat: it follows the newest comment while the viewer is at the bottom, says "N new comments"
// when they scrolled up, pages back through older comments, and shows each comment's time,
// author badge and whether it is the viewer's own; the pinned comment and the chat's rules
// (slow mode, members-only) are shown where the viewer reads and types. A refused comment is
// never lost: its text goes back into the box, or stays in the list as "not sent — retry". Uses only the API the stock
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
const chatRules = $("#chat-rules");
const pinnedBox = $("#pinned");
const newComments = $("#new-comments");
const olderItem = $("#older");
const emptyItem = $("#empty");

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

function saveAuth(tokens) {
  auth = {
    access: tokens.access_token,
    refresh: tokens.refresh_token,
    expiresAt: Date.now() + tokens.expires_in * 1000,
    // The account's own name and id, as the server says (never derived from what was typed).
    username: tokens.user?.username ?? auth?.username,
    userId: tokens.user?.id ?? auth?.userId,
    role: tokens.user?.role ?? auth?.role,
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
  checkModeration();
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
    saveAuth(tokens);
    f.reset();
    reconnect();
    textarea.focus();
  } catch (error) {
    $("#auth-error").textContent = error.message;
  }
}

async function signIn(event) {
  event.preventDefault();
  const f = event.target;
  try {
    const tokens = await api("/api/auth/login", { login: f.login.value, password: f.password.value });
    saveAuth(tokens);
    f.reset();
    reconnect();
    textarea.focus();
  } catch (error) {
    $("#auth-error").textContent = error.message;
  }
}

async function signOut() {
  const refreshToken = auth?.refresh;
  clearAuth();
  reconnect();
  $("#signed-out summary").focus();
  if (refreshToken) await api("/api/auth/logout", { refresh_token: refreshToken }).catch(() => {});
}

// ---- Comments ---------------------------------------------------------------------------

let lastSeq = 0;
const bySeq = new Map();

const since = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const exact = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

// "just now", "3 minutes ago", …; the exact time is the element's title.
function relative(date) {
  const seconds = Math.round((date.getTime() - Date.now()) / 1000);
  if (Math.abs(seconds) < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (Math.abs(minutes) < 60) return since.format(minutes, "minute");
  const hours = Math.round(minutes / 60);
  if (Math.abs(hours) < 24) return since.format(hours, "hour");
  return since.format(Math.round(hours / 24), "day");
}

function part(li, tag, className) {
  let node = li.querySelector(`.${className}`);
  if (!node) {
    node = li.appendChild(document.createElement(tag));
    node.className = className;
  }
  return node;
}

function renderComment(li, c) {
  // Pending comments have no seq yet and stay out of the ordered, numbered list.
  if (c.seq) {
    li.dataset.seq = c.seq;
    li.dataset.id = c.id;
  }
  li.classList.toggle("deleted", Boolean(c.deleted));
  const mine = Boolean(auth && c.author?.id && c.author.id === auth.userId);
  li.classList.toggle("mine", mine);
  const head = part(li, "div", "head");
  const author = part(head, "span", "author");
  author.dir = "auto";
  author.textContent = c.author?.username ?? "someone";
  const badge = part(head, "span", "badge");
  badge.textContent = c.author?.role ?? "";
  badge.hidden = !c.author?.role;
  const you = part(head, "span", "you");
  you.textContent = "you";
  you.hidden = !mine;
  const when = part(head, "time", "when");
  if (c.created_at) {
    const date = new Date(c.created_at);
    when.dateTime = c.created_at;
    when.title = exact.format(date);
    when.textContent = relative(date);
  }
  const meta = part(head, "span", "meta");
  meta.textContent = c.edited ? "edited" : "";
  const body = part(li, "p", "body");
  body.dir = "auto";
  body.textContent = c.deleted ? "This comment was deleted." : c.body;
  if (c.seq && c.author?.id) {
    li.dataset.author = c.author.id;
    tools(li);
  }
}

// A moderator's actions on one comment (shown only while the viewer moderates the video).
function tools(li) {
  if (li.querySelector(".tools")) return;
  const bar = li.appendChild(document.createElement("div"));
  bar.className = "tools";
  for (const [action, label] of [
    ["pin", "Pin"],
    ["delete", "Delete"],
    ["timeout", "Time out"],
    ["ban", "Ban"],
    ["purge", "Remove all"],
  ]) {
    const button = bar.appendChild(document.createElement("button"));
    button.type = "button";
    button.dataset.action = action;
    button.textContent = label;
  }
}

// Whether the viewer is at (or within a line of) the newest comment.
function atBottom() {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 48;
}

function toBottom() {
  list.scrollTop = list.scrollHeight;
  unseen = 0;
  newComments.hidden = true;
}

let unseen = 0;
function showUnseen() {
  newComments.textContent = `${unseen} new comment${unseen === 1 ? "" : "s"} ↓`;
  newComments.hidden = unseen === 0;
}

// Inserts in seq order. `live` comments follow the viewer: at the bottom the list scrolls to
// them, scrolled up they are counted in "N new comments". Older pages keep the viewer's place.
function insert(c, live = true) {
  if (bySeq.has(c.seq)) return;
  const follow = atBottom();
  const heightBefore = list.scrollHeight;
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
  const newest = c.seq > lastSeq;
  lastSeq = Math.max(lastSeq, c.seq);
  emptyItem.hidden = true;
  if (!newest) {
    // An older comment above the viewer: keep what they were reading in place.
    if (!follow) list.scrollTop += list.scrollHeight - heightBefore;
  } else if (follow) {
    toBottom();
  } else if (live) {
    unseen += 1;
    showUnseen();
  }
}

function update(c) {
  const li = bySeq.get(c.seq);
  if (li) renderComment(li, c);
  if (pinned && pinned.id === c.id && c.deleted) showPinned(null);
}

// The first seq the list covers, shown or inside a skipped run.
function firstSeq() {
  const seqs = [...list.querySelectorAll("li[data-seq]")].map((li) => Number(li.dataset.seq));
  return seqs.length ? Math.min(...seqs) : 0;
}

function showOlder() {
  olderItem.hidden = firstSeq() <= 1;
}

// One page back through the REST API, above what is shown.
async function loadOlder() {
  const button = $("#load-older");
  button.disabled = true;
  try {
    const first = firstSeq();
    const page = await fetch(`/api/videos/${encodeURIComponent(videoId)}/comments?before=${first}&limit=50`);
    if (!page.ok) throw new Error(`HTTP ${page.status}`);
    const { comments } = await page.json();
    comments.reverse().forEach((c) => insert(c, false));
    button.textContent = "Load older comments";
  } catch {
    button.textContent = "Could not load older comments — retry";
  } finally {
    button.disabled = false;
    showOlder();
  }
}

// ---- Pinned comment and chat rules ------------------------------------------------------------

let pinned = null;
let rules = { slow_mode_seconds: 0, chat_mode: "everyone" };
let slowUntil = 0;

function showPinned(comment) {
  pinned = comment && !comment.deleted ? comment : null;
  pinnedBox.hidden = !pinned;
  if (!pinned) return;
  pinnedBox.querySelector(".author").textContent = pinned.author?.username ?? "someone";
  pinnedBox.querySelector(".body").textContent = pinned.body;
}

function showRules(settings) {
  if (settings) rules = settings;
  const parts = [];
  if (rules.chat_mode === "members") parts.push("Members-only chat.");
  if (rules.slow_mode_seconds > 0) {
    const left = Math.ceil((slowUntil - Date.now()) / 1000);
    parts.push(
      left > 0
        ? `Slow mode: you can comment again in ${left} s.`
        : `Slow mode: one comment every ${rules.slow_mode_seconds} s.`,
    );
  }
  chatRules.textContent = parts.join(" ");
  chatRules.hidden = parts.length === 0;
}

setInterval(() => {
  for (const when of list.querySelectorAll("time.when[datetime]")) when.textContent = relative(new Date(when.dateTime));
  if (slowUntil) showRules();
}, 1000);

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
  comments.forEach((c) => insert(c, false));
  toBottom();
}

// ---- Socket ---------------------------------------------------------------------------

let socket = null;
let channel = null;

function setStatus(text, live) {
  statusLine.textContent = text;
  statusLine.classList.toggle("live", live);
}

// Opens a socket as the viewer is now (signed in or not) and joins the video. With `previous`
// (a sign-in or sign-out), the old socket keeps the viewer watching until the new one has
// joined, and only then closes: the viewer misses nothing and the count others see does not dip.
function connect(previous = null) {
  const mine = new Socket("/socket", { params: () => (auth ? { token: auth.access } : {}) });
  socket = mine;
  let retired = false;
  const retire = () => {
    if (retired || !previous) return;
    retired = true;
    previous.disconnect();
  };
  // Should the new socket never join (the server is gone), do not keep both forever.
  if (previous) setTimeout(retire, 10_000);
  mine.onOpen(() => mine === socket && setStatus("Live", true));
  mine.onClose((event) => {
    if (mine !== socket) return; // a retired socket closing
    setStatus("Reconnecting…", false);
    // The count is unknown until the channel rejoins.
    watching.textContent = "– watching";
    // 4001: the session ended (signed out elsewhere, device revoked, password changed):
    // reconnect without it. 4002: the token expired before a refresh reached the socket.
    if (event && event.code === 4001 && auth) {
      clearAuth("Your session has ended. Sign in again to comment.");
    } else if (event && event.code === 4002 && auth) {
      refresh();
    }
  });
  mine.onMessage(onSocketMessage);
  mine.connect();
  // On every (re)join, ask only for what came after the last comment shown.
  channel = mine.channel(topic, () => (lastSeq > 0 ? { since_seq: lastSeq } : {}));
  channel.on("comment_created", (c) => {
    if (lastSeq > 0 && c.seq > lastSeq + 1) fillGap(c);
    else insert(c);
  });
  channel.on("comments_skipped", markSkipped);
  channel.on("comment_updated", update);
  channel.on("comment_deleted", update);
  channel.on("viewer_count", ({ count }) => showWatching(count));
  channel.on("comment_pinned", ({ comment }) => showPinned(comment));
  channel.on("comment_unpinned", () => showPinned(null));
  channel.on("chat_settings", (settings) => showRules(settings));
  // The server closed the topic: this viewer may no longer watch it (made private, membership
  // removed, role taken away).
  channel.onClose((payload) => {
    if (payload && payload.reason) setStatus(joinRefusal(payload.reason), false);
  });
  channel
    .join()
    .receive("ok", ({ comments, viewers, recovered, skipped = [], chat_settings, pinned_comment }) => {
      retire();
      const first = bySeq.size === 0;
      if (recovered === false) {
        notice.textContent = "You were away for a while: showing the latest comments.";
        replaceAll(comments);
      } else {
        comments.forEach((c) => insert(c, !first));
        skipped.forEach(markSkipped);
      }
      // The page opens at the newest comment.
      if (first) toBottom();
      showOlder();
      emptyItem.textContent = "No comments yet. Say hello!";
      emptyItem.hidden = bySeq.size > 0 || list.querySelector("li.skipped") !== null;
      showWatching(viewers);
      showPinned(pinned_comment ?? null);
      showRules(chat_settings);
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

// A new socket for the viewer as they are now (after signing in or out, or switching
// accounts), made before the old one is let go.
function reconnect() {
  if (!socket) return;
  connect(socket);
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

function postRefusal(reason, message, retryAfter) {
  const wait = retryAfter ? ` Try again in ${retryAfter} s.` : "";
  switch (reason) {
    case "rate_limited":
      return `You are commenting too fast.${wait || " Wait a moment, then try again."}`;
    case "slow_mode":
      return `Slow mode is on: you can comment again in ${retryAfter} s.`;
    case "timed_out":
      return `You are timed out of this chat for ${retryAfter} s more.`;
    case "banned":
      return message || "You are banned from this chat.";
    case "members_only_chat":
      return "This chat is for the video's members only.";
    case "blocked_term":
      return "Your comment contains a term this chat does not allow. Edit it and try again.";
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
  textarea.value = "";
  send(body);
}

// Sends `body`, shown as pending until the server answers. A refusal never loses the text: it
// goes back into the box if that is still empty, or stays in the list as "not sent — retry".
function send(body) {
  const pending = document.createElement("li");
  pending.className = "pending";
  renderComment(pending, { author: { username: auth.username, id: auth.userId }, body });
  pending.querySelector(".meta").textContent = "sending…";
  list.insertBefore(pending, $("#pending-anchor").nextSibling);
  toBottom();
  const refused = (text) => {
    pending.remove();
    postError.textContent = text;
    if (!textarea.value) textarea.value = body;
    else keepUnsent(body, text);
  };
  channel
    .push("new_comment", { body })
    .receive("ok", ({ comment, held_comment }) => {
      pending.remove();
      if (comment) insert(comment);
      if (held_comment) notice.textContent = "Your comment is held for the moderators to review.";
      if (rules.slow_mode_seconds > 0) {
        slowUntil = Date.now() + rules.slow_mode_seconds * 1000;
        showRules();
      }
    })
    .receive("error", ({ reason, message, retry_after }) => refused(postRefusal(reason, message, retry_after)))
    .receive("timeout", () => refused("No answer from the server. Check your connection and try again."));
}

// A refused comment whose text could not go back into the box (the viewer typed on).
function keepUnsent(body, why) {
  const li = document.createElement("li");
  li.className = "unsent";
  renderComment(li, { author: { username: auth?.username, id: auth?.userId }, body });
  li.querySelector(".meta").textContent = `not sent: ${why}`;
  const retry = li.appendChild(document.createElement("button"));
  retry.type = "button";
  retry.className = "link";
  retry.textContent = "Retry";
  retry.addEventListener("click", () => {
    li.remove();
    send(body);
  });
  const discard = li.appendChild(document.createElement("button"));
  discard.type = "button";
  discard.className = "link";
  discard.textContent = "Discard";
  discard.addEventListener("click", () => li.remove());
  list.insertBefore(li, $("#pending-anchor").nextSibling);
  toBottom();
}

// ---- Moderation (the video's owner and moderators, site moderators and admins) ---------------

const modPanel = $("#mod-panel");
const modSettings = $("#mod-settings");
const modStatus = $("#mod-status");
const heldList = $("#held");
const videoPath = `/api/videos/${encodeURIComponent(videoId)}`;
let moderates = false;

// A REST call as the signed-in viewer; the answer's JSON (null for 204), or an ApiError.
async function call(method, path, body) {
  const headers = { authorization: `Bearer ${auth?.access}` };
  if (body) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body && JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "network", "Cannot reach the server. Check your connection.");
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const e = data?.error || {};
    throw new ApiError(response.status, e.code || "error", e.message || `The server said ${response.status}.`);
  }
  return data;
}

// Whether the signed-in viewer moderates this video: their site role, the video's owner, or
// the moderators it appointed. Shows or hides the tools accordingly.
async function checkModeration() {
  let now = false;
  if (auth && (auth.role === "admin" || auth.role === "moderator")) now = true;
  else if (auth) {
    const [video, appointed] = await Promise.all([
      call("GET", videoPath).catch(() => null),
      call("GET", `${videoPath}/moderators`).catch(() => ({ moderators: [] })),
    ]);
    now = video?.owner_id === auth.userId || appointed.moderators.some((m) => m.id === auth.userId);
  }
  moderates = now;
  document.body.classList.toggle("moderating", moderates);
  modPanel.hidden = !moderates;
  if (moderates) loadPanel();
}

async function loadPanel() {
  try {
    const [chat, terms] = await Promise.all([call("GET", `${videoPath}/chat`), call("GET", `${videoPath}/blocked-terms`)]);
    const slow = modSettings.elements.slow;
    if (![...slow.options].some((o) => Number(o.value) === chat.slow_mode_seconds)) {
      slow.add(new Option(`${chat.slow_mode_seconds} s`, String(chat.slow_mode_seconds)));
    }
    slow.value = String(chat.slow_mode_seconds);
    modSettings.elements.members.checked = chat.chat_mode === "members";
    modSettings.elements.hold.checked = chat.blocked_terms_action === "hold";
    modSettings.elements.terms.value = terms.terms.join("\n");
    await loadHeld();
  } catch (error) {
    modStatus.textContent = error.message;
  }
}

async function loadHeld() {
  const { held_comments: held } = await call("GET", `${videoPath}/held-comments`);
  heldList.replaceChildren();
  for (const h of held) {
    const li = heldList.appendChild(document.createElement("li"));
    li.dataset.id = h.id;
    const who = li.appendChild(document.createElement("strong"));
    who.textContent = `${h.author.username}: `;
    const body = li.appendChild(document.createElement("span"));
    body.dir = "auto";
    body.textContent = h.body;
    for (const [action, label] of [
      ["approve", "Approve"],
      ["reject", "Reject"],
    ]) {
      const button = li.appendChild(document.createElement("button"));
      button.type = "button";
      button.className = "link";
      button.dataset.held = action;
      button.textContent = label;
    }
  }
  if (held.length === 0) {
    const li = heldList.appendChild(document.createElement("li"));
    li.textContent = "Nothing is waiting for review.";
  }
}

// Runs a confirmed moderation action and says how it went; its effect arrives live.
async function moderate(question, action) {
  if (!window.confirm(question)) return;
  modStatus.textContent = "";
  try {
    await action();
    modStatus.textContent = "Done.";
  } catch (error) {
    modStatus.textContent = error.message;
  }
}

list.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  const li = button?.closest("li[data-id]");
  if (!button || !li || !moderates) return;
  const id = li.dataset.id;
  const user = li.dataset.author;
  const name = li.querySelector(".author").textContent;
  const actions = {
    pin: ["Pin this comment above the chat?", () => call("PUT", `${videoPath}/pin`, { comment_id: id })],
    delete: [`Delete this comment by ${name}?`, () => call("DELETE", `/api/comments/${id}`)],
    timeout: [`Time out ${name} for 5 minutes?`, () => call("PUT", `${videoPath}/bans/${user}`, { duration_seconds: 300 })],
    ban: [`Ban ${name} from this chat and remove their comments?`, () => call("PUT", `${videoPath}/bans/${user}`, { remove_comments: true })],
    purge: [`Remove all of ${name}'s comments from this video?`, () => call("DELETE", `${videoPath}/users/${user}/comments`)],
  };
  const [question, action] = actions[button.dataset.action];
  moderate(question, action);
});

modSettings.addEventListener("submit", (event) => {
  event.preventDefault();
  const f = modSettings.elements;
  const terms = f.terms.value.split("\n").map((t) => t.trim()).filter(Boolean);
  moderate("Apply these chat settings?", async () => {
    await call("PATCH", `${videoPath}/chat`, {
      slow_mode_seconds: Number(f.slow.value),
      chat_mode: f.members.checked ? "members" : "everyone",
      blocked_terms_action: f.hold.checked ? "hold" : "refuse",
    });
    await call("PUT", `${videoPath}/blocked-terms`, { terms });
  });
});

heldList.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-held]");
  if (!button) return;
  const id = button.closest("li").dataset.id;
  const approve = button.dataset.held === "approve";
  moderate(approve ? "Approve this comment? It is posted now." : "Reject this comment?", async () => {
    await (approve
      ? call("POST", `${videoPath}/held-comments/${id}/approve`)
      : call("DELETE", `${videoPath}/held-comments/${id}`));
    await loadHeld();
  });
});

$("#refresh-held").addEventListener("click", () => loadHeld().catch((error) => (modStatus.textContent = error.message)));

// ---- Wiring ---------------------------------------------------------------------------

$("#signup-form").addEventListener("submit", signUp);
$("#signin-form").addEventListener("submit", signIn);
$("#signout").addEventListener("click", signOut);
form.addEventListener("submit", post);
list.addEventListener("scroll", () => {
  if (atBottom()) {
    unseen = 0;
    newComments.hidden = true;
  }
});
newComments.addEventListener("click", toBottom);
$("#load-older").addEventListener("click", loadOlder);
$("#pause-announcements").addEventListener("click", (event) => {
  // A flood read aloud comment by comment is unusable: the viewer can pause it.
  const log = $("#log");
  const paused = log.getAttribute("aria-live") === "off";
  log.setAttribute("aria-live", paused ? "polite" : "off");
  event.target.setAttribute("aria-pressed", String(!paused));
  event.target.textContent = paused ? "Pause announcements" : "Resume announcements";
});
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
