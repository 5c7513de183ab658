// Test only: look at the dashboard (or at `wpbackup report --html`'s file) in a real browser, as
// a person would, and print what was seen as one line `SEEN {json}` for the Rust test to assert
// on; screenshots go to SHOT_DIR. The browser is started by the test harness
// (tests/util/browser.rs); this script connects to it (BROWSER_WS). Every request that is not
// for 127.0.0.1 (or the one file opened) is aborted and listed in what was seen.
//
//   BROWSE_MODE=dashboard  DASH_URL, DASH_TOKEN, SITE_PATH (the site link to follow: /site/S/N)
//   BROWSE_MODE=file       FILE_PATH (an HTML file)
import puppeteer from "puppeteer-core";
import path from "node:path";
import { pathToFileURL } from "node:url";

const env = process.env;
const shots = env.SHOT_DIR;
const seen = { blocked: [], console_errors: [] };

async function newPage(browser, allowed) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  await page.setRequestInterception(true);
  page.on("request", (req) => {
    if (allowed(req.url())) req.continue();
    else {
      seen.blocked.push(req.url());
      req.abort("blockedbyclient");
    }
  });
  page.on("console", (msg) => {
    if (msg.type() === "error") seen.console_errors.push(msg.text());
  });
  return page;
}

/// What a person sees on a fleet page: the banner and each row with its colour and marks.
function fleetSeen(page) {
  return page.evaluate(() => {
    const visible = (el) => !!el && el.getClientRects().length > 0;
    return {
      title: document.title,
      banner: document.querySelector(".banner")?.innerText ?? null,
      banner_background: getComputedStyle(document.querySelector(".banner")).backgroundColor,
      scripts: document.scripts.length,
      rows: [...document.querySelectorAll("#fleet tbody tr")].map((tr) => ({
        server: tr.dataset.server,
        site: tr.dataset.site,
        label: tr.querySelector(".badge")?.innerText,
        label_background: getComputedStyle(tr.querySelector(".badge")).backgroundColor,
        row_background: getComputedStyle(tr.querySelector("td")).backgroundColor,
        failover: visible(tr.querySelector(".failover")),
        text: tr.innerText,
      })),
    };
  });
}

/// What a person sees on a site page: the strip, the charts, the events and the archives.
function siteSeen(page) {
  return page.evaluate(() => ({
    title: document.title,
    heading: document.querySelector("h1")?.innerText,
    scripts: document.scripts.length,
    strip: [...document.querySelectorAll("svg.strip rect")].map((r) => r.dataset.status),
    charts: [...document.querySelectorAll(".chart")].map((c) => ({
      title: c.querySelector("h3")?.innerText,
      points: c.querySelectorAll("circle").length,
      line: !!c.querySelector("polyline"),
      width: c.querySelector("svg")?.getBoundingClientRect().width ?? 0,
    })),
    events: [...document.querySelectorAll(".events li")].map((li) => li.innerText),
    archives: [...document.querySelectorAll("#archives tbody tr")].map((tr) =>
      [...tr.querySelectorAll("td")].map((td) => td.innerText),
    ),
  }));
}

async function submitToken(page, token) {
  await page.type("#token", token);
  const [res] = await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  return res;
}

async function dashboard(browser) {
  const base = new URL(env.DASH_URL);
  const page = await newPage(browser, (u) => new URL(u).hostname === "127.0.0.1");
  const locked = await page.goto(new URL("/", base).href);
  seen.locked = {
    status: locked.status(),
    form: (await page.$("#token")) !== null,
    fleet_shown: (await page.$("#fleet")) !== null,
  };
  const refused = await submitToken(page, "not-the-token");
  seen.refused = {
    status: refused.status(),
    message: await page.$eval("#refused", (e) => e.innerText).catch(() => null),
    fleet_shown: (await page.$("#fleet")) !== null,
  };
  await page.screenshot({ path: path.join(shots, "login-refused.png") });
  const opened = await submitToken(page, env.DASH_TOKEN);
  seen.fleet = { status: opened.status(), url: page.url(), ...(await fleetSeen(page)) };
  await page.screenshot({ path: path.join(shots, "fleet.png"), fullPage: true });
  const [site] = await Promise.all([
    page.waitForNavigation(),
    page.click(`a[href="${env.SITE_PATH}"]`),
  ]);
  seen.site = { status: site.status(), url: page.url(), ...(await siteSeen(page)) };
  await page.screenshot({ path: path.join(shots, "site.png"), fullPage: true });
  const [out] = await Promise.all([page.waitForNavigation(), page.click("form.logout button")]);
  const after = await page.goto(new URL("/", base).href);
  seen.logout = {
    status: out.status(),
    url: page.url(),
    then: after.status(),
    form: (await page.$("#token")) !== null,
  };
}

async function file(browser) {
  const url = pathToFileURL(env.FILE_PATH).href;
  const page = await newPage(browser, (u) => u === url);
  await page.goto(url);
  seen.fleet = await fleetSeen(page);
  await page.screenshot({ path: path.join(shots, "report-html.png"), fullPage: true });
}

const browser = await puppeteer.connect({ browserWSEndpoint: env.BROWSER_WS });
try {
  if (env.BROWSE_MODE === "dashboard") await dashboard(browser);
  else if (env.BROWSE_MODE === "file") await file(browser);
  else throw new Error(`BROWSE_MODE=${env.BROWSE_MODE}: use dashboard or file`);
} finally {
  for (const p of await browser.pages()) if (p.url() !== "about:blank") await p.close();
  await browser.disconnect();
}
console.log(`SEEN ${JSON.stringify(seen)}`);
