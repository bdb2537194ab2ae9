// Drives headless Chromium (Playwright's playwright-core, Debian's chromium)
// over a headscan report opened from file://: no console errors, no network
// requests, a heatmap cell's hover and click show the numbers of
// heads.parquet (as read independently by `headscan results top`), the
// keyboard moves over the grid, a sequence page draws arcs and a non-blank
// WebGL 3D view that rotates on drag and keys and zooms, and without WebGL
// the page says so and draws a 2D fallback. Screenshots go to the artifacts folder.
//
// usage: node report.mjs <report dir> <feature> <top.txt> <artifacts dir> [<report without sequences>]
// top.txt: the output of `headscan results top --feature <feature> --top 1`.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

// playwright-core is installed by the system test under $PLAYWRIGHT_PREFIX (node_modules inside).
const require = createRequire(path.resolve(process.env.PLAYWRIGHT_PREFIX || ".", "package.json"));
const { chromium } = require("playwright-core");

const [site, feature, topFile, artifacts, plainSite] = process.argv.slice(2);
// "  1-2  113  6  5.31%  1.5x  0.00%– 11.08%  3.5e-1  no  0.168" (layer-head 0-based).
const row = fs.readFileSync(topFile, "utf8").split("\n")
  .map((l) => l.match(/^\s*(\d+)-(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+%)\s+\S+\s+([\d.]+%)–\s*([\d.]+%)\s+(\S+)\s+(?:yes|no)\s+(\S+)/))
  .find((m) => m);
if (!row) { console.log("FAIL cannot parse " + topFile); process.exit(1); }
const expected = { feature, layer: +row[1], head: +row[2], arcs: +row[3], hits: +row[4], percent: row[5],
  ci: [row[6], row[7]], p: parseFloat(row[8]), null_p: parseFloat(row[9]) };
console.log("expected from heads.parquet: " + JSON.stringify(expected));
fs.mkdirSync(artifacts, { recursive: true });
const failures = [];
function check(ok, what) {
  console.log((ok ? "ok   " : "FAIL ") + what);
  if (!ok) { failures.push(what); }
}

// Non-white pixels inside the border of a PNG screenshot (base64), decoded in a page.
async function inkedIn(pg, png) {
  return pg.evaluate(async (b64) => {
    const img = new Image();
    img.src = "data:image/png;base64," + b64;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.width; c.height = img.height;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    // Inside the element's border only: non-white pixels.
    let n = 0;
    for (let y = 4; y < c.height - 4; y++) {
      for (let x = 4; x < c.width - 4; x++) {
        const k = 4 * (y * c.width + x);
        if (d[k] < 250 || d[k + 1] < 250 || d[k + 2] < 250) { n++; }
      }
    }
    return n;
  }, png);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
const errors = [], requests = [];
context.on("request", (r) => {
  const u = r.url();
  if (!u.startsWith("file://") && !u.startsWith("data:") && !u.startsWith("blob:")) { requests.push(u); }
});
const page = await context.newPage();
page.on("console", (m) => { if (m.type() === "error") { errors.push(m.text()); } });
page.on("pageerror", (e) => errors.push(String(e)));

const index = "file://" + path.resolve(site, "index.html");
await page.goto(index);
await page.waitForSelector("#heatmap svg rect.cell");
await page.screenshot({ path: path.join(artifacts, "index.png"), fullPage: true });

// Pick the feature, hover the expected head's cell.
await page.selectOption("#feature-pick", { label: expected.feature });
const cell = `#heatmap rect.cell[data-layer="${expected.layer}"][data-head="${expected.head}"]`;
await page.hover(cell);
const label = `${expected.layer + 1}-${expected.head + 1}`;
const stat = async (scope, name) => (await page.textContent(`${scope} [data-stat="${name}"]`)).trim();
check((await page.textContent("#details-head")).includes(label), `hover shows head ${label}`);
check(await stat("#details", "proportion") === expected.percent, `hover proportion ${expected.percent}`);
check(await stat("#details", "arcs") === String(expected.arcs), `hover arcs ${expected.arcs}`);
check(await stat("#details", "hits") === String(expected.hits), `hover hits ${expected.hits}`);
check(await stat("#details", "ci") === `${expected.ci[0]} – ${expected.ci[1]}`, `hover CI ${expected.ci.join(" – ")}`);
const near = (text, v, rel) => Math.abs(parseFloat(text) - v) <= rel * Math.abs(v) + 1e-12;
check(near(await stat("#details", "p_value"), expected.p, 0.05), `hover p ≈ ${expected.p}`);
check(near(await stat("#details", "null_p_value"), expected.null_p, 0.01), `hover null p ≈ ${expected.null_p}`);
check((await stat("#details", "null_weighted_z")) !== "", "hover shows the weighted null z");
await page.screenshot({ path: path.join(artifacts, "hover.png"), fullPage: false });

// Keyboard: focus the grid, move right, the details follow.
await page.focus("#heatmap svg");
await page.keyboard.press("ArrowRight");
const moved = (await page.textContent("#details-head")).trim();
check(/^Head \d+-\d+/.test(moved), `keyboard moves the cursor (${moved})`);

// Click opens the head page with the same numbers.
await page.hover(cell);
await Promise.all([page.waitForURL(/head\.html#/), page.click(cell)]);
await page.waitForSelector("#head-table");
check((await page.textContent("#head-title")).includes(label), `click opens head ${label}`);
const tr = `#head-table tr[data-feature="${expected.feature}"]`;
check(await stat(tr, "proportion") === expected.percent, `head page proportion ${expected.percent}`);
check(await stat(tr, "ci") === `${expected.ci[0]} – ${expected.ci[1]}`, "head page CI");
await page.screenshot({ path: path.join(artifacts, "head.png"), fullPage: true });

// A sequence page: arcs drawn, and the 3D view renders a non-blank canvas that rotates.
const seqPages = fs.existsSync(path.join(site, "sequences"))
  ? fs.readdirSync(path.join(site, "sequences")).filter((f) => f.endsWith(".html")).sort() : [];
check(seqPages.length > 0, `sequence pages written (${seqPages.join(", ")})`);
if (seqPages.length > 0) {
  await page.goto("file://" + path.resolve(site, "sequences", seqPages[0]));
  await page.waitForSelector("#seq-arcs svg");
  const paths = await page.locator("#seq-arcs svg path").count();
  check(paths > 0, `sequence page draws arcs (${paths})`);
  check(await page.getAttribute("#seq-3d", "data-renderer") === "webgl", "the 3D view renders with WebGL");
  // Pixels from a screenshot of the canvas element (what is on screen), decoded in the page.
  const shot = async () => (await page.locator("#seq-3d").screenshot()).toString("base64");
  const inked = (png) => inkedIn(page, png);
  const a = await shot();
  fs.writeFileSync(path.join(artifacts, "webgl-start.png"), Buffer.from(a, "base64"));
  const before = await inked(a);
  check(before > 1000, `3D canvas is not blank (${before} inked pixels)`);
  // Rotate by dragging across the canvas.
  const box = await page.locator("#seq-3d").boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + 120, box.y + box.height / 2 + 40, { steps: 6 });
  await page.mouse.up();
  const dragged = await shot();
  fs.writeFileSync(path.join(artifacts, "webgl-dragged.png"), Buffer.from(dragged, "base64"));
  check(dragged !== a, "dragging rotates the 3D view");
  check(await inked(dragged) > 1000, "the rotated 3D view is not blank");
  // Keyboard: arrow keys rotate, + zooms.
  await page.focus("#seq-3d");
  await page.keyboard.press("ArrowLeft");
  await page.keyboard.press("ArrowLeft");
  const turned = await shot();
  check(turned !== dragged, "arrow keys rotate the 3D view");
  await page.keyboard.press("+");
  await page.keyboard.press("+");
  const zoomed = await shot();
  fs.writeFileSync(path.join(artifacts, "webgl-zoomed.png"), Buffer.from(zoomed, "base64"));
  check(zoomed !== turned, "+ zooms the 3D view");
  await page.screenshot({ path: path.join(artifacts, "sequence.png"), fullPage: true });
}

// Without WebGL (--disable-3d-apis) the sequence page says so and draws the flat fallback, without errors.
if (seqPages.length > 0) {
  const flatBrowser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-3d-apis", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const flatPage = await flatBrowser.newPage({ viewport: { width: 1280, height: 1000 } });
  flatPage.on("console", (m) => { if (m.type() === "error") { errors.push("no-WebGL page: " + m.text()); } });
  flatPage.on("pageerror", (e) => errors.push("no-WebGL page: " + String(e)));
  flatPage.on("request", (r) => { if (!r.url().startsWith("file://") && !r.url().startsWith("data:")) { requests.push(r.url()); } });
  await flatPage.goto("file://" + path.resolve(site, "sequences", seqPages[0]));
  await flatPage.waitForSelector("#seq-arcs svg");
  check(await flatPage.getAttribute("#seq-3d", "data-renderer") === "2d", "without WebGL the 2D fallback draws the view");
  check((await flatPage.textContent("#seq-3d-note")).includes("WebGL is unavailable"), "without WebGL the page says so");
  const flatShot = (await flatPage.locator("#seq-3d").screenshot()).toString("base64");
  fs.writeFileSync(path.join(artifacts, "fallback-2d.png"), Buffer.from(flatShot, "base64"));
  check(await inkedIn(page, flatShot) > 1000, "the 2D fallback is not blank");
  await flatBrowser.close();
}

// A report without visualised sequences: its pages load without errors too.
if (plainSite) {
  for (const f of ["index.html", "head.html#1-1"]) {
    await page.goto("file://" + path.resolve(plainSite, f.split("#")[0]) + (f.includes("#") ? "#" + f.split("#")[1] : ""));
    await page.waitForSelector(f.startsWith("head") ? "#head-table" : "#heatmap svg");
  }
  check((await page.textContent("#head-sequences")).includes("--visualize"), "a head page without sequences says how to add them");
}

check(errors.length === 0, `no console errors (${errors.join(" | ")})`);
check(requests.length === 0, `no network requests (${requests.join(" ")})`);
await browser.close();
if (failures.length > 0) {
  console.log(`${failures.length} check(s) failed`);
  process.exit(1);
}
console.log("report browser checks passed");
