// Drives Banter with the unmodified `phoenix` 1.8 client, as a Phoenix app would use it.
// Invoked by tests/integration/js_client.rs with BANTER_URL, TOKEN_A, TOKEN_B, USER_A, USER_B.
// Prints one line per step; "restart" asks the Rust side to restart the server; exits 0 when
// every step passed, 1 (with the failing step) otherwise.
import { Socket, Presence } from "phoenix";
import WebSocket from "ws";

const url = process.env.BANTER_URL.replace("http", "ws") + "/socket";
const { TOKEN_A, TOKEN_B, USER_A, USER_B } = process.env;
const TOPIC = "comments:jsvideo";

const step = (name) => console.log(`step ${name}`);
const fail = (why) => {
  console.log(`FAIL ${why}`);
  process.exit(1);
};
const within = (ms, what, executor) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms);
    executor(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
const join = (channel) =>
  within(5000, "join", (ok, err) =>
    channel.join().receive("ok", ok).receive("error", (e) => err(new Error(JSON.stringify(e)))),
  );
const push = (channel, event, payload) =>
  within(5000, `push ${event}`, (ok, err) =>
    channel.push(event, payload).receive("ok", ok).receive("error", (e) => err(new Error(JSON.stringify(e)))),
  );

async function main() {
  // 1. Connect with the token as a param (A) and with the authToken subprotocol (B).
  const a = new Socket(url, { transport: WebSocket, params: { token: TOKEN_A }, heartbeatIntervalMs: 300 });
  const b = new Socket(url, { transport: WebSocket, authToken: TOKEN_B, heartbeatIntervalMs: 300 });
  const opened = (s) => within(5000, "open", (ok) => s.onOpen(ok));
  a.connect();
  b.connect();
  await Promise.all([opened(a), opened(b)]);
  step("connected");

  // 2. Join with history.
  const chA = a.channel(TOPIC, {});
  const presenceA = new Presence(chA);
  const joinedA = await join(chA);
  if (joinedA.last_seq !== 1 || joinedA.comments[0]?.body !== "posted over REST") fail(`history ${JSON.stringify(joinedA)}`);
  step("history");

  // 3. Presence lists both users once B joins.
  let lastSeenB = 0;
  const chB = b.channel(TOPIC, () => ({ since_seq: lastSeenB }));
  chB.on("comment_created", (c) => (lastSeenB = Math.max(lastSeenB, c.seq)));
  const bothPresent = within(5000, "presence of both", (ok) =>
    presenceA.onSync(() => {
      const ids = presenceA.list((id) => id);
      if (ids.includes(USER_A) && ids.includes(USER_B)) ok();
    }),
  );
  const joinedB = await join(chB);
  lastSeenB = joinedB.last_seq;
  await bothPresent;
  step("presence");

  // 4. A posts; the reply carries the stored comment; B receives the broadcast.
  const received = within(5000, "broadcast to B", (ok) => chB.on("comment_created", (c) => c.body === "hello from js" && ok(c)));
  const reply = await push(chA, "new_comment", { body: "hello from js" });
  if (reply.comment.seq !== 2 || reply.comment.body !== "hello from js") fail(`reply ${JSON.stringify(reply)}`);
  const broadcast = await received;
  if (broadcast.seq !== 2) fail(`broadcast ${JSON.stringify(broadcast)}`);
  step("live");

  // 5. B leaves, misses two comments, rejoins with since_seq and recovers exactly those.
  await within(5000, "leave", (ok) => chB.leave().receive("ok", ok));
  await push(chA, "new_comment", { body: "missed 1" });
  await push(chA, "new_comment", { body: "missed 2" });
  const chB2 = b.channel(TOPIC, { since_seq: lastSeenB });
  const rejoined = await join(chB2);
  const recovered = rejoined.comments.map((c) => c.body);
  if (JSON.stringify(recovered) !== JSON.stringify(["missed 1", "missed 2"]) || rejoined.recovered !== true)
    fail(`recovery ${JSON.stringify(rejoined)}`);
  step("recovery");

  // 6. Heartbeats every 300 ms keep the socket up well past several intervals.
  let closes = 0;
  a.onClose(() => closes++);
  await new Promise((r) => setTimeout(r, 2000));
  if (!a.isConnected() || closes !== 0) fail("heartbeat did not keep the socket alive");
  step("heartbeat");

  // 6b. A fresh token pushed in-band on the `phoenix` topic with the stock client's own
  // `push`/`onMessage`: accepted for the same account, refused for another one.
  const pushToken = (token) =>
    within(5000, "access_token reply", (ok) => {
      const ref = a.makeRef();
      a.onMessage(({ topic, event, payload, ref: r }) => topic === "phoenix" && event === "phx_reply" && r === ref && ok(payload));
      a.push({ topic: "phoenix", event: "access_token", payload: { token }, ref });
    });
  const same = await pushToken(TOKEN_A);
  if (same.status !== "ok" || typeof same.response.expires_at !== "number") fail(`in-band token ${JSON.stringify(same)}`);
  const other = await pushToken(TOKEN_B);
  if (other.status !== "error" || other.response.reason !== "wrong account") fail(`foreign token ${JSON.stringify(other)}`);
  if (!a.isConnected() || chA.state !== "joined") fail("the socket or channel suffered from the token pushes");
  step("access_token");

  // 7. A server restart: the client reconnects and the channel rejoins by itself.
  const rejoinedAfterRestart = within(20000, "rejoin after restart", (ok) => {
    let sawError = false;
    chA.onError(() => (sawError = true));
    const timer = setInterval(() => {
      if (sawError && chA.state === "joined" && a.isConnected()) {
        clearInterval(timer);
        ok();
      }
    }, 50);
  });
  console.log("restart");
  await rejoinedAfterRestart;
  const afterRestart = await push(chA, "new_comment", { body: "after restart" });
  if (afterRestart.comment.seq !== 5) fail(`after restart ${JSON.stringify(afterRestart)}`);
  step("reconnect");

  a.disconnect();
  b.disconnect();
  console.log("PASS");
  process.exit(0);
}

main().catch((e) => fail(e.stack || String(e)));
