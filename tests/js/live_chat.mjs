// The video page as a live chat, in headless Chromium (Debian's `chromium`, driven by
// playwright-core), run by tests/integration/browser.rs against a real server at BANTER_URL.
// The Rust side registers the owner of VIDEO (which has 60 comments) and a fan, and hands their
// tokens and sign-in details over. Screenshots (desktop and phone, light and dark) go to
// BROWSER_ARTIFACTS. Any failed expectation, page error, CSP violation or 404 exits non-zero.

import { mkdirSync, readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const base = process.env.BANTER_URL;
const artifacts = process.env.BROWSER_ARTIFACTS || "browser-artifacts";
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const { VIDEO, OWNER_TOKEN, OWNER_LOGIN, OWNER_PASSWORD, FAN_TOKEN, FAN_EMAIL, FAN_USERNAME, FAN_PASSWORD } =
  process.env;
mkdirSync(artifacts, { recursive: true });
// axe-core, pinned in package.json and loaded from disk (no CDN).
const axeSource = readFileSync(new URL("./node_modules/axe-core/axe.min.js", import.meta.url), "utf8");

const step = (text) => console.log(`step: ${text}`);
const fail = (text) => {
  throw new Error(text);
};
const shot = (page, name) => page.screenshot({ path: `${artifacts}/${name}.png`, fullPage: true });

function watchProblems(page, name, problems) {
  page.on("pageerror", (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on("console", (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`${name}: ${m.text()}`);
  });
  page.on("response", (r) => {
    if (r.status() === 404) problems.push(`${name}: 404 for ${r.url()}`);
  });
}

async function rest(method, path, token, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body && JSON.stringify(body),
  });
  if (!res.ok) fail(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? null : res.json();
}

const comment = (token, body) => rest("POST", `/api/videos/${VIDEO}/comments`, token, { body });
const atBottom = (page) =>
  page.$eval("#comments", (el) => el.scrollHeight - el.scrollTop - el.clientHeight < 48);
const seqs = (page) => page.$$eval("#comments li[data-seq]", (lis) => lis.map((li) => Number(li.dataset.seq)));

async function waitForBody(page, text, timeout = 10000) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll("#comments li[data-seq] .body")].some((p) => p.textContent === t),
    text,
    { timeout },
  );
}

async function post(page, text) {
  await page.focus("#post-body");
  await page.keyboard.insertText(text);
  await page.keyboard.press("Control+Enter");
}

// Runs axe-core on the page as it is now; serious and critical violations are problems.
async function audit(page, name, problems) {
  const violations = await page.evaluate(async (source) => {
    if (!window.axe) (0, eval)(source);
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  }, axeSource);
  for (const v of violations) problems.push(`${name}: axe: ${v}`);
}

const problems = [];
const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
});
try {
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const d = await desktop.newPage();
  watchProblems(d, "desktop", problems);
  const p = await phone.newPage();
  watchProblems(p, "phone", problems);

  step("the page opens at the newest comment, and 'Load older' pages back to the first");
  await d.goto(`${base}/videos/${VIDEO}`);
  await d.waitForSelector("#status.live");
  await waitForBody(d, "comment 60");
  if (!(await atBottom(d))) fail("the list did not open at the newest comment");
  if (await d.locator("#older").isHidden()) fail("no 'Load older comments' with 60 comments and a page of 50");
  while (await d.locator("#older").isVisible()) {
    await d.click("#load-older");
    // The button is disabled while its page loads; a fixed pause raced a slow load into a
    // second click on a button about to be hidden.
    await d.waitForFunction(() => !document.querySelector("#load-older").disabled);
  }
  const all = await seqs(d);
  if (JSON.stringify(all) !== JSON.stringify([...Array(60).keys()].map((i) => i + 1)))
    fail(`after loading older comments: ${all}`);
  const when = await d.$eval("#comments li[data-seq] time.when", (t) => [t.dateTime, t.title, t.textContent]);
  if (!when[0] || !when[1] || !when[2]) fail(`a comment's time is missing: ${when}`);
  if ((await d.textContent("#comments li[data-seq] .badge")) !== "owner") fail("the owner's comment has no badge");

  step("scrolled up, new comments are counted instead of pulling the viewer down");
  await d.$eval("#comments", (el) => (el.scrollTop = 0));
  for (const n of [1, 2, 3]) await comment(FAN_TOKEN, `while you read ${n}`);
  await d.waitForFunction(() => document.querySelector("#new-comments").textContent === "3 new comments ↓");
  if (await atBottom(d)) fail("the list followed new comments although the viewer had scrolled up");
  await shot(d, "chat-01-new-comments-desktop");
  await audit(d, "desktop, new comments", problems);
  await d.click("#new-comments");
  if (!(await atBottom(d))) fail("'new comments' did not take the viewer to the newest");
  if (await d.locator("#new-comments").isVisible()) fail("the indicator stayed after going down");

  step("at the bottom, the list follows new comments");
  await comment(FAN_TOKEN, "followed");
  await waitForBody(d, "followed");
  await d.waitForTimeout(100);
  if (!(await atBottom(d))) fail("the list did not follow a new comment at the bottom");

  step("signing in with an email shows the username, and focus goes to the comment box");
  await p.goto(`${base}/videos/${VIDEO}`);
  await p.waitForSelector("#status.live");
  await d.waitForFunction(() => document.querySelector("#watching").textContent === "2 watching");
  await d.evaluate(() => {
    window.counts = [];
    new MutationObserver(() => window.counts.push(document.querySelector("#watching").textContent)).observe(
      document.querySelector("#watching"),
      { childList: true, characterData: true, subtree: true },
    );
  });
  await p.click("#signed-out details:nth-of-type(1) summary");
  await p.fill("#signin-form [name=login]", FAN_EMAIL);
  await p.fill("#signin-form [name=password]", FAN_PASSWORD);
  await p.click("#signin-form button[type=submit]");
  await p.waitForFunction((n) => document.querySelector("#who").textContent === n, FAN_USERNAME);
  const focused = await p.evaluate(() => document.activeElement?.id);
  if (focused !== "post-body") fail(`focus after signing in is on ${focused}`);
  // The phone's socket is replaced by a signed-in one before the anonymous one goes: the
  // desktop viewer's count never dips (it may not even change).
  await p.waitForSelector("#status.live");
  await d.waitForTimeout(2500);
  const dips = await d.evaluate(() => window.counts.filter((t) => t !== "2 watching" && t !== "3 watching"));
  if (dips.length) fail(`another viewer's sign-in changed the count to ${dips}`);

  step("on a phone the chat is a bounded panel: the post box is on screen with 60+ comments");
  const height = await p.evaluate(() => document.documentElement.scrollHeight);
  if (height > 2 * 844) fail(`the phone page is ${height}px tall: the comments push the post box away`);
  await p.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
  const box = await p.$eval("#post-body", (el) => {
    const r = el.getBoundingClientRect();
    return { top: r.top, bottom: r.bottom, inner: window.innerHeight };
  });
  if (box.top < 0 || box.bottom > box.inner) fail(`the post box is off screen: ${JSON.stringify(box)}`);
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) fail(`the phone page is ${overflow}px wider than the screen`);
  await shot(p, "chat-02-phone");
  await audit(p, "phone, signed in", problems);

  step("own comments are marked; user text is laid out by its own direction");
  await post(p, "mine, on a phone");
  await waitForBody(p, "mine, on a phone");
  const mine = await p.$$eval("#comments li.mine[data-seq]", (lis) =>
    lis.map((li) => [li.querySelector(".body").textContent, li.querySelector(".you").hidden]),
  );
  if (!mine.some(([body, hidden]) => body === "mine, on a phone" && !hidden)) fail(`own comment not marked: ${mine}`);
  await comment(OWNER_TOKEN, "مرحبا بالجميع");
  await waitForBody(d, "مرحبا بالجميع");
  const dir = await d.$$eval("#comments li[data-seq] .body", (bs) => bs[bs.length - 1].dir);
  if (dir !== "auto") fail(`user text has dir=${dir}`);

  step("slow mode shows where the viewer types, and refused comments are never lost");
  await rest("PATCH", `/api/videos/${VIDEO}/chat`, OWNER_TOKEN, { slow_mode_seconds: 30 });
  await p.waitForFunction(() => /Slow mode/.test(document.querySelector("#chat-rules").textContent));
  // The fan commented a moment ago ("mine, on a phone"), so slow mode refuses the next ones.
  // Sent, then the next one typed in the same moment: its refusal finds the box in use.
  await p.evaluate(() => {
    const box = document.querySelector("#post-body");
    box.value = "too soon 1";
    document.querySelector("#post-form").requestSubmit();
    box.value = "too soon 2";
  });
  await p.waitForSelector("#comments li.unsent", { timeout: 5000 });
  const unsent = await p.$eval("#comments li.unsent", (li) => [li.querySelector(".body").textContent, li.querySelector(".meta").textContent]);
  if (unsent[0] !== "too soon 1" || !/again in \d+ s/.test(unsent[1])) fail(`the refused comment: ${unsent}`);
  if ((await p.inputValue("#post-body")) !== "too soon 2") fail("the text being typed was lost");
  await p.focus("#post-body");
  await p.keyboard.press("Control+Enter");
  await p.waitForFunction(() => /again in/.test(document.querySelector("#post-error").textContent), null, { timeout: 5000 });
  await p.waitForFunction(() => document.querySelector("#post-body").value === "too soon 2", null, { timeout: 5000 });
  if (!/again in \d+ s/.test(await p.textContent("#post-error"))) fail("the refusal gives no wait time");
  await shot(p, "chat-03-refused-phone");
  await audit(p, "phone, refused", problems);
  await rest("PATCH", `/api/videos/${VIDEO}/chat`, OWNER_TOKEN, { slow_mode_seconds: 0 });

  step("a pinned comment shows above the chat for everyone, live");
  const pinnedBody = "rules: be kind";
  const rules = await comment(OWNER_TOKEN, pinnedBody);
  await rest("PUT", `/api/videos/${VIDEO}/pin`, OWNER_TOKEN, { comment_id: rules.id });
  for (const page of [d, p]) {
    await page.waitForFunction((t) => !document.querySelector("#pinned").hidden && document.querySelector("#pinned .body").textContent === t, pinnedBody);
  }

  step("announcements can be paused, and the comment list can take focus");
  await d.click("#pause-announcements");
  if ((await d.getAttribute("#log", "aria-live")) !== "off") fail("announcements did not pause");
  await d.click("#pause-announcements");
  if ((await d.getAttribute("#log", "aria-live")) !== "polite") fail("announcements did not resume");
  await d.focus("#comments");
  if ((await d.evaluate(() => document.activeElement?.id)) !== "comments") fail("the comment list cannot take focus");
  await shot(d, "chat-04-desktop-light");

  step("the owner moderates from the page: pin, slow mode, time out, remove; the fan sees each");
  if (await p.locator("#mod-panel").isVisible()) fail("a viewer who does not moderate sees the moderation panel");
  d.on("dialog", (dialog) => dialog.accept());
  await d.click("#signed-out details:nth-of-type(1) summary");
  await d.fill("#signin-form [name=login]", OWNER_LOGIN);
  await d.fill("#signin-form [name=password]", OWNER_PASSWORD);
  await d.click("#signin-form button[type=submit]");
  await d.waitForSelector("#mod-panel:not([hidden])");
  const fanComment = (text) => `#comments li[data-seq]:has(.body:text-is("${text}"))`;
  await d.click(`${fanComment("followed")} button[data-action=pin]`);
  await p.waitForFunction(() => document.querySelector("#pinned .body").textContent === "followed");
  await d.click("#mod-panel summary");
  await d.selectOption("#mod-settings [name=slow]", "60");
  await d.fill("#mod-settings [name=terms]", "spam");
  await d.check("#mod-settings [name=hold]");
  await d.click("#mod-settings button[type=submit]");
  await p.waitForFunction(() => /every 60 s/.test(document.querySelector("#chat-rules").textContent));
  await audit(d, "desktop, moderation panel", problems);
  await shot(d, "chat-07-moderating-desktop");
  await d.click(`${fanComment("while you read 1")} button[data-action=timeout]`);
  await p.fill("#post-body", "am I timed out?");
  await p.keyboard.press("Control+Enter");
  await p.waitForFunction(() => /timed out/.test(document.querySelector("#post-error").textContent));
  await d.click(`${fanComment("while you read 2")} button[data-action=purge]`);
  await p.waitForFunction(
    () => [...document.querySelectorAll("#comments li[data-seq] .author")].filter((a) => a.textContent === "fanuser").every((a) => a.closest("li").classList.contains("deleted")),
  );

  step("a held comment waits in the review queue; approved from the page, everyone sees it");
  await rest("PATCH", `/api/videos/${VIDEO}/chat`, OWNER_TOKEN, { slow_mode_seconds: 0 });
  await rest("DELETE", `/api/videos/${VIDEO}/bans/${await p.evaluate(() => JSON.parse(localStorage.getItem("banter.auth")).userId)}`, OWNER_TOKEN);
  const held = await fetch(`${base}/api/videos/${VIDEO}/comments`, {
    method: "POST",
    headers: { authorization: `Bearer ${FAN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ body: "buy SPAM now" }),
  });
  if (held.status !== 202) fail(`a comment with a blocked term was not held: ${held.status}`);
  await d.click("#refresh-held");
  await d.waitForSelector("#held button[data-held=approve]");
  await d.click("#held button[data-held=approve]");
  for (const page of [d, p]) await waitForBody(page, "buy SPAM now");

  step("an empty video says so; the dark theme follows the system setting");
  const dark = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: "dark" });
  const night = await dark.newPage();
  watchProblems(night, "dark", problems);
  await night.goto(`${base}/videos/${VIDEO}-empty`);
  await night.waitForSelector("#status.live");
  // "Loading comments…" until the join's answer, then the empty state.
  await night
    .waitForFunction(() => document.querySelector("#empty").textContent === "No comments yet. Say hello!", null, { timeout: 5000 })
    .catch(() => fail("the empty state still says it is loading"));
  if (await night.locator("#empty").isHidden()) fail("no empty state on a video without comments");
  const background = await night.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const [r, g, b] = background.match(/\d+/g).map(Number);
  if (r + g + b > 150) fail(`the dark theme's background is ${background}`);
  await shot(night, "chat-05-desktop-dark");
  await audit(night, "dark, empty", problems);
  const darkPhone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, colorScheme: "dark" });
  const nightPhone = await darkPhone.newPage();
  watchProblems(nightPhone, "dark phone", problems);
  await nightPhone.goto(`${base}/videos/${VIDEO}`);
  await nightPhone.waitForSelector("#status.live");
  await shot(nightPhone, "chat-06-phone-dark");
  await audit(nightPhone, "dark phone, comments", problems);

  if (problems.length) fail(`problems in the pages:\n${problems.join("\n")}`);
  console.log("ok");
} catch (error) {
  console.error(error.stack || String(error));
  console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
