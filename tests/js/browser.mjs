// The video page end to end in headless Chromium (Debian's `chromium`, driven by playwright-core),
// run by tests/integration/browser.rs against a real server at BANTER_URL.
//
// Viewer A (a phone-sized window, our own Phoenix client) reaches the server through a TCP proxy
// this script controls, so its network can really be cut and restored. Viewer B (desktop, with
// the stock `phoenix` client dropped in for ours) talks to the server directly. Screenshots of
// the key states go to BROWSER_ARTIFACTS. Any failed expectation, page error or CSP violation
// exits non-zero with a message.

import { readFileSync, mkdirSync } from "node:fs";
import net from "node:net";
import { chromium } from "playwright-core";

const base = process.env.BANTER_URL;
const artifacts = process.env.BROWSER_ARTIFACTS || "browser-artifacts";
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const video = `e2e-${Date.now()}`;
mkdirSync(artifacts, { recursive: true });
const stockPhoenix = readFileSync(new URL("./node_modules/phoenix/priv/static/phoenix.mjs", import.meta.url), "utf8");

const step = (text) => console.log(`step: ${text}`);
const fail = (text) => {
  throw new Error(text);
};

// A TCP proxy whose connections can all be dropped at once, and new ones refused, like a
// network outage on one viewer's side.
function startProxy(target) {
  const sockets = new Set();
  let down = false;
  const server = net.createServer((client) => {
    if (down) return client.destroy();
    const upstream = net.connect(target.port, target.hostname);
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream).pipe(client);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${server.address().port}`,
        cut() {
          down = true;
          for (const s of sockets) s.destroy();
          sockets.clear();
        },
        restore() {
          down = false;
        },
        close() {
          server.close();
        },
      }),
    ),
  );
}

async function watchProblems(page, name, problems) {
  page.on("pageerror", (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on("console", (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`${name}: ${m.text()}`);
  });
}

async function seqs(page) {
  return page.$$eval("#comments li[data-seq]", (lis) => lis.map((li) => Number(li.dataset.seq)));
}

async function bodies(page) {
  return page.$$eval("#comments li[data-seq] .body", (ps) => ps.map((p) => p.textContent));
}

async function waitForBody(page, text, timeout = 15000) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll("#comments li[data-seq] .body")].some((p) => p.textContent === t),
    text,
    { timeout },
  );
}

async function signUp(page, name) {
  await page.click("#signed-out details:nth-of-type(2) summary");
  await page.fill("#signup-form [name=email]", `${name}@example.com`);
  await page.fill("#signup-form [name=username]", name);
  await page.fill("#signup-form [name=password]", "correct horse battery");
  await page.click("#signup-form button[type=submit]");
  await page.waitForFunction((n) => document.querySelector("#who").textContent === n, name);
}

// Posts from the keyboard: focus the box, type, Ctrl+Enter.
async function post(page, text) {
  await page.focus("#post-body");
  await page.keyboard.insertText(text);
  await page.keyboard.press("Control+Enter");
}

const shot = (page, name) => page.screenshot({ path: `${artifacts}/${name}.png`, fullPage: true });

const problems = [];
const proxy = await startProxy(new URL(base));
const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
});
try {
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  // Viewer B runs the page with the stock phoenix client instead of ours.
  await desktop.route(/\/assets\/phoenix\.js/, (route) =>
    route.fulfill({ contentType: "text/javascript", body: stockPhoenix }),
  );
  const b = await desktop.newPage();
  await watchProblems(b, "B", problems);
  const a = await phone.newPage();
  await watchProblems(a, "A", problems);
  // Refreshes by any of the phone's tabs (A, and A2 later), and A's socket connections.
  const refreshes = [];
  phone.on("request", (r) => r.url().endsWith("/api/auth/refresh") && refreshes.push(Date.now()));
  let socketsOpenedByA = 0;
  a.on("websocket", () => (socketsOpenedByA += 1));

  step("the home page lists videos");
  await b.goto(`${base}/`);
  if ((await b.locator("ul.videos a").count()) < 1) fail("no demo videos on /");

  step("two viewers open the same video and the count goes to 2");
  await b.goto(`${base}/videos/${video}`);
  await b.waitForSelector("#status.live");
  await a.goto(`${proxy.url}/videos/${video}`);
  await a.waitForSelector("#status.live");
  await b.waitForFunction(() => document.querySelector("#watching").textContent === "2 watching", null, {
    timeout: 10000,
  });
  await a.waitForFunction(() => document.querySelector("#watching").textContent === "2 watching");
  await shot(b, "01-two-viewers-desktop");
  await shot(a, "01-two-viewers-phone");

  step("A signs up and posts; it shows at once as pending, then confirmed; B sees it");
  await signUp(a, `alice${Date.now() % 100000}`);
  await signUp(b, `bob${Date.now() % 100000}`);
  await a.evaluate(() => {
    window.sawPending = false;
    new MutationObserver((records) => {
      for (const r of records)
        for (const n of r.addedNodes) if (n.classList?.contains("pending")) window.sawPending = true;
    }).observe(document.querySelector("#comments"), { childList: true });
  });
  await post(a, "hello from A");
  await waitForBody(a, "hello from A");
  if (!(await a.evaluate(() => window.sawPending))) fail("A's own comment never showed as pending");
  await a
    .waitForFunction(() => !document.querySelector("#comments li.pending"), null, { timeout: 5000 })
    .catch(() => fail("the pending comment was not confirmed by the server's reply"));
  await waitForBody(b, "hello from A");
  await shot(a, "02-first-comment-phone");

  step("A's network drops; B posts twice; A comes back and catches up with no gap or duplicate");
  proxy.cut();
  await a.waitForFunction(() => !document.querySelector("#status").classList.contains("live"));
  // Cut off, the count is unknown rather than stale.
  await a.waitForFunction(() => document.querySelector("#watching").textContent === "– watching");
  await post(b, "while you were away 1");
  await waitForBody(b, "while you were away 1");
  await post(b, "while you were away 2");
  await waitForBody(b, "while you were away 2");
  await shot(a, "03-offline-phone");
  await new Promise((r) => setTimeout(r, 1500));
  proxy.restore();
  await waitForBody(a, "while you were away 2", 20000);
  await a.waitForSelector("#status.live");
  const seqA = await seqs(a);
  const seqB = await seqs(b);
  if (new Set(seqA).size !== seqA.length) fail(`A has duplicates: ${seqA}`);
  for (let i = 1; i < seqA.length; i++) {
    if (seqA[i] !== seqA[i - 1] + 1) fail(`A has a gap or disorder: ${seqA}`);
  }
  if (JSON.stringify(seqA) !== JSON.stringify(seqB)) fail(`A ${seqA} and B ${seqB} differ`);
  await shot(a, "04-caught-up-phone");

  step("HTML and script in a comment render as text");
  const html = `<script>window.xss=1</script><b>bold</b> & <img src=x onerror="window.xss=2">`;
  await post(a, html);
  await waitForBody(b, html);
  await waitForBody(a, html);
  if ((await b.locator("#comments b, #comments img, #comments script").count()) > 0) fail("comment HTML was parsed");
  if ((await b.evaluate(() => window.xss)) !== undefined) fail("comment script ran");
  await shot(b, "05-html-as-text-desktop");

  step("a comment that is too long is refused in words and kept in the box");
  await post(a, "x".repeat(2001));
  await a.waitForFunction(() => /2000/.test(document.querySelector("#post-error").textContent), null, {
    timeout: 5000,
  });
  if ((await a.inputValue("#post-body")).length !== 2001) fail("the refused comment was not kept for editing");
  if (await a.locator("#comments li.pending").count()) fail("a refused comment stayed in the list");
  await a.fill("#post-body", "");

  step("an edit and a deletion by another viewer update the list live");
  const edited = await b.evaluate(async () => {
    const auth = JSON.parse(localStorage.getItem("banter.auth"));
    const li = [...document.querySelectorAll("#comments li[data-id]")].find(
      (l) => l.querySelector(".body").textContent === "while you were away 1",
    );
    const headers = { authorization: `Bearer ${auth.access}`, "content-type": "application/json" };
    const id = li.dataset.id;
    const patch = await fetch(`/api/comments/${id}`, { method: "PATCH", headers, body: JSON.stringify({ body: "edited while you watched" }) });
    const other = [...document.querySelectorAll("#comments li[data-id]")].find(
      (l) => l.querySelector(".body").textContent === "while you were away 2",
    );
    const del = await fetch(`/api/comments/${other.dataset.id}`, { method: "DELETE", headers });
    return [patch.status, del.status];
  });
  if (edited[0] !== 200 || edited[1] >= 300) fail(`edit/delete over REST failed: ${edited}`);
  await waitForBody(a, "edited while you watched");
  await waitForBody(a, "This comment was deleted.");
  await shot(a, "05b-edited-and-deleted-phone");

  step("the access token is refreshed in-band: no reconnect, no dip in B's count, posting goes on");
  await b.evaluate(() => {
    window.watchingSeen = [];
    new MutationObserver(() => window.watchingSeen.push(document.querySelector("#watching").textContent)).observe(
      document.querySelector("#watching"),
      { childList: true, characterData: true, subtree: true },
    );
  });
  const opened = socketsOpenedByA;
  const refreshedBefore = refreshes.length;
  // Two refreshes (the TTL is 10 s, a refresh comes at 8 s): the socket outlives its first
  // token's expiry on in-band tokens alone.
  const deadline = Date.now() + 30000;
  while (refreshes.length < refreshedBefore + 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  if (refreshes.length < refreshedBefore + 2) fail("A did not refresh its access token twice in 30 s");
  await new Promise((r) => setTimeout(r, 1000));
  if (socketsOpenedByA !== opened) fail(`A's socket reconnected ${socketsOpenedByA - opened} time(s) across token refreshes`);
  const dips = await b.evaluate(() => window.watchingSeen.filter((t) => t !== "2 watching"));
  if (dips.length) fail(`B's count changed while A refreshed: ${dips}`);
  await a.waitForSelector("#status.live");
  await post(a, "still signed in after the refresh");
  await waitForBody(b, "still signed in after the refresh");

  step("a second tab of A shares one refresh with the first, and both stay signed in");
  const a2 = await phone.newPage();
  await watchProblems(a2, "A2", problems);
  await a2.goto(`${proxy.url}/videos/${video}`);
  await a2.waitForSelector("#status.live");
  const who = await a.textContent("#who");
  if ((await a2.textContent("#who")) !== who) fail("the second tab is not signed in as A");
  const before = refreshes.length;
  const until = Date.now() + 30000;
  while (refreshes.length < before + 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 250));
  if (refreshes.length < before + 1) fail("neither tab refreshed in 30 s");
  await new Promise((r) => setTimeout(r, 2500));
  const cycle = refreshes.slice(before).filter((t) => t - refreshes[before] < 2500);
  if (cycle.length !== 1) fail(`the two tabs made ${cycle.length} refresh requests for one token`);
  for (const [page, name] of [
    [a, "A"],
    [a2, "A2"],
  ]) {
    if ((await page.textContent("#who")) !== who) fail(`${name} was signed out by the shared refresh`);
  }
  await post(a2, "from the second tab");
  await waitForBody(b, "from the second tab");

  step("posting too fast shows the rate-limit error in words");
  // The limit is a burst of 5 refilled at 1 a second: 8 posts at once must hit it.
  for (let i = 0; i < 8; i++) await post(a, `quick ${i}`);
  const limited = await a
    .waitForFunction(() => /too fast/.test(document.querySelector("#post-error").textContent), null, {
      timeout: 5000,
    })
    .then(() => true)
    .catch(() => false);
  if (!limited) fail("no rate-limit message after 8 quick posts");
  await shot(a, "06-rate-limited-phone");

  step("a flood on a hot video is sampled: 'N comments skipped — show' loads the rest in order");
  const hot = await desktop.newPage();
  await watchProblems(hot, "hot", problems);
  await hot.goto(`${base}/videos/${video}-hot`);
  await hot.waitForFunction(() => document.querySelector("#status").textContent === "Live");
  // Six posters of five comments each, all at once over REST: far above 20 a second.
  const posters = await Promise.all(
    [...Array(6).keys()].map(async (i) => {
      const name = `flood${i}${Date.now() % 100000}`;
      const res = await fetch(`${base}/api/auth/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: `${name}@example.com`, username: name, password: "correct horse battery", device_id: `d-${name}` }),
      });
      if (res.status !== 201) fail(`register ${name}: ${res.status}`);
      return (await res.json()).access_token;
    }),
  );
  const statuses = await Promise.all(
    posters.flatMap((token, i) =>
      [...Array(5).keys()].map((j) =>
        fetch(`${base}/api/videos/${video}-hot/comments`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body: JSON.stringify({ body: `flood ${i}.${j}` }),
        }).then((r) => r.status),
      ),
    ),
  );
  if (statuses.some((s) => s !== 201)) fail(`flood posts: ${statuses}`);
  await hot.waitForSelector(".show-skipped", { timeout: 10000 });
  await hot.waitForFunction(
    () => {
      const shown = [...document.querySelectorAll("#comments li[data-seq]:not(.skipped)")].length;
      const skipped = [...document.querySelectorAll("#comments li.skipped")].reduce((n, li) => n + Number(li.dataset.remaining), 0);
      return shown + skipped === 30;
    },
    null,
    { timeout: 10000 },
  );
  await shot(hot, "07-skipped-desktop");
  while ((await hot.$$(".show-skipped")).length > 0) {
    await hot.click(".show-skipped");
    await hot.waitForTimeout(100);
  }
  const hotSeqs = await seqs(hot);
  if (JSON.stringify(hotSeqs) !== JSON.stringify([...Array(30).keys()].map((i) => i + 1)))
    fail(`after showing the skipped comments: ${hotSeqs}`);
  await hot.close();

  step("the phone layout does not scroll sideways; signing out disables posting");
  const overflow = await a.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) fail(`the phone page is ${overflow}px wider than the screen`);
  await a.click("#signout");
  await a.waitForSelector("#signed-out:not([hidden])");
  if (!(await a.locator("#post-body").isDisabled())) fail("the comment box is enabled while signed out");
  await shot(a, "07-signed-out-phone");
  // The other tab follows: signed out too, and still watching anonymously.
  await a2.waitForSelector("#signed-out:not([hidden])", { timeout: 10000 });
  await a2.waitForSelector("#status.live", { timeout: 10000 });

  if (problems.length) fail(`problems in the pages:\n${problems.join("\n")}`);
  console.log("ok");
} catch (error) {
  console.error(error.stack || String(error));
  console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
  proxy.close();
}
