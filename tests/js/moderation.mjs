// The moderation events as the unmodified `phoenix` 1.8 client sees them: the join reply's
// chat settings and pin, `comment_pinned`, `chat_settings`, `comment_deleted` and
// `comment_unpinned` pushed live, and refusals with their reason and wait time.
// Invoked by tests/integration/js_client.rs with BANTER_URL, TOKEN_OWNER, TOKEN_TROLL,
// USER_TROLL; the owner owns video "jsmod". Prints one line per step, then PASS.
import { Socket } from "phoenix";
import WebSocket from "ws";

const base = process.env.BANTER_URL;
const url = base.replace("http", "ws") + "/socket";
const { TOKEN_OWNER, TOKEN_TROLL, USER_TROLL } = process.env;
const TOPIC = "comments:jsmod";

const step = (name) => console.log(`step ${name}`);
const fail = (why) => {
  console.log(`FAIL ${why}`);
  process.exit(1);
};
const within = (ms, what, executor) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms);
    executor((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
const join = (channel) =>
  within(5000, "join", (ok) => channel.join().receive("ok", ok).receive("error", (e) => fail(`join ${JSON.stringify(e)}`)));
// Resolves with {status, response} whatever the status.
const push = (channel, event, payload) =>
  within(5000, `push ${event}`, (ok) =>
    channel
      .push(event, payload)
      .receive("ok", (response) => ok({ status: "ok", response }))
      .receive("error", (response) => ok({ status: "error", response })),
  );
const next = (channel, event) => within(5000, event, (ok) => channel.on(event, ok));
const rest = async (method, path, body) => {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN_OWNER}`, "content-type": "application/json" },
    body: body && JSON.stringify(body),
  });
  if (!res.ok) fail(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? null : res.json();
};

async function main() {
  const owner = new Socket(url, { transport: WebSocket, params: { token: TOKEN_OWNER } });
  const troll = new Socket(url, { transport: WebSocket, params: { token: TOKEN_TROLL } });
  owner.connect();
  troll.connect();
  const chOwner = owner.channel(TOPIC, {});
  const chTroll = troll.channel(TOPIC, {});
  const joined = await join(chOwner);
  await join(chTroll);
  if (joined.chat_settings?.slow_mode_seconds !== 0 || joined.chat_settings?.chat_mode !== "everyone" || joined.pinned_comment !== null)
    fail(`join reply ${JSON.stringify(joined)}`);
  step("join");

  const said = await push(chTroll, "new_comment", { body: "first!!!" });
  if (said.status !== "ok") fail(`post ${JSON.stringify(said)}`);
  const pinned = next(chOwner, "comment_pinned");
  await rest("PUT", "/api/videos/jsmod/pin", { comment_id: said.response.comment.id });
  if ((await pinned).comment.id !== said.response.comment.id) fail("pinned the wrong comment");
  step("pin");

  const slowSeen = Promise.all([next(chOwner, "chat_settings"), next(chTroll, "chat_settings")]);
  await rest("PATCH", "/api/videos/jsmod/chat", { slow_mode_seconds: 60 });
  for (const s of await slowSeen) if (s.slow_mode_seconds !== 60) fail(`settings ${JSON.stringify(s)}`);
  const slowed = await push(chTroll, "new_comment", { body: "again" });
  if (slowed.status !== "error" || slowed.response.reason !== "slow_mode" || !(slowed.response.retry_after > 0 && slowed.response.retry_after <= 60))
    fail(`slow mode ${JSON.stringify(slowed)}`);
  step("slow_mode");

  const deleted = next(chOwner, "comment_deleted");
  const unpinned = next(chOwner, "comment_unpinned");
  await rest("PUT", `/api/videos/jsmod/bans/${USER_TROLL}`, { duration_seconds: 600, reason: "spam", remove_comments: true });
  if ((await deleted).id !== said.response.comment.id) fail("the wrong comment was deleted");
  if ((await unpinned).comment_id !== said.response.comment.id) fail("the pin stayed");
  const timedOut = await push(chTroll, "new_comment", { body: "let me in" });
  if (timedOut.response.reason !== "timed_out" || !(timedOut.response.retry_after > 590)) fail(`timeout ${JSON.stringify(timedOut)}`);
  step("timeout");

  owner.disconnect();
  troll.disconnect();
  console.log("PASS");
  process.exit(0);
}

main().catch((e) => fail(e.stack || String(e)));
