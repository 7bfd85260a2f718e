// Browser test of the GraphiQL page served by guildhall.
//
//   GUILDHALL_URL=http://127.0.0.1:8080 node graphiql.mjs
//
// Signs up a user over HTTP, then in Debian's headless Chromium (nothing but the
// server's own origin reachable) loads /graphiql, checks the Docs explorer lists the
// Query root type, opens and closes a dialog, sends `{ viewer { name } }` with the
// user's bearer token from the Headers editor and waits for the name in the result.
// The page must come with a Content-Security-Policy header; any request to another
// origin, CSP violation, uncaught page error or HTTP error answer fails the test. Saves a screenshot to $SCREENSHOT (default
// target/browser/graphiql.png, relative to the working directory).
// Usually run through ./run, which builds nothing but starts the server.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_TIMEOUT_MS = 20_000;
const TOTAL_TIMEOUT_MS = 180_000;

const baseUrl = process.env.GUILDHALL_URL;
const screenshotPath = path.resolve(process.env.SCREENSHOT || 'target/browser/graphiql.png');

const blocked = []; // requests to other origins, aborted
const cspViolations = []; // from securitypolicyviolation events and the console
const pageErrors = []; // uncaught exceptions in the page
const httpErrors = []; // responses >= 400 from our origin to the page's requests
let step = 'start';
let browser;
let page;

// One line per distinct message (data: URIs shortened), with a count, at most 30 lines.
function summarize(list) {
  const counts = new Map();
  for (const item of list) {
    const key = String(item).replace(/(data:[\w/+.-]+;base64,)[A-Za-z0-9+/=.…]+/g, '$1…');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const lines = [...counts].map(([text, n]) => `    - ${text.slice(0, 400)}${n > 1 ? ` (×${n})` : ''}`);
  if (lines.length > 30) lines.splice(30, lines.length - 30, `    - … and ${lines.length - 30} more`);
  return lines.join('\n');
}

function finish(error) {
  if (error) {
    console.error(`graphiql browser test FAILED at step "${step}": ${error.message ?? error}`);
    const lists = [
      ['requests to other origins (blocked)', blocked],
      ['Content-Security-Policy violations', cspViolations],
      ['uncaught page errors', pageErrors],
      ['HTTP errors', httpErrors],
    ];
    for (const [title, list] of lists) {
      if (list.length) console.error(`  ${title}:\n${summarize(list)}`);
    }
    console.log('graphiql: 0 passed, 1 failed');
  } else {
    console.log('graphiql: 1 passed, 0 failed');
  }
}

async function run() {
  if (!baseUrl) throw new Error('set GUILDHALL_URL to the server base URL, e.g. http://127.0.0.1:8080');
  const origin = new URL(baseUrl).origin;

  step = 'sign up over HTTP';
  const suffix = randomBytes(4).toString('hex');
  const name = `GraphiQL Tester ${suffix}`;
  const input = {
    email: `graphiql-${suffix}@example.test`,
    password: `browser-test-${suffix}-password`,
    name,
  };
  // Sign up (the answer carries no credentials, whoever has the address), then sign in: an
  // account whose address is not verified yet may sign in and read.
  const post = async (what, query, variables) => {
    const response = await fetch(`${origin}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
    const text = await response.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`POST /graphql (${what}) answered ${response.status} with non-JSON: ${text.slice(0, 500)}`);
    }
    if (!response.ok || body.errors) {
      throw new Error(`${what} failed (HTTP ${response.status}): ${text.slice(0, 1000)}`);
    }
    return body.data;
  };
  await post('signUp', 'mutation($input: SignUpInput!) { signUp(input: $input) { message } }', { input });
  const logIn = await post(
    'logIn',
    'mutation($input: LogInInput!) { logIn(input: $input) { accessToken user { name } } }',
    { input: { email: input.email, password: input.password } },
  );
  const token = logIn?.logIn?.accessToken;
  if (typeof token !== 'string' || !token) {
    throw new Error(`logIn returned no token: ${JSON.stringify(logIn)}`);
  }
  if (logIn.logIn.user?.name !== name) {
    throw new Error(`logIn returned user ${JSON.stringify(logIn.logIn.user)}, expected name ${name}`);
  }

  step = 'launch chromium';
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);

  // Only the server's own origin is reachable: anything else is recorded and aborted.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    let sameOrigin = false;
    try {
      sameOrigin = new URL(url).origin === origin;
    } catch {
      sameOrigin = false;
    }
    if (sameOrigin) return route.continue();
    blocked.push(`${route.request().method()} ${url}`);
    return route.abort('blockedbyclient');
  });

  // CSP violations, as events (with the directive and blocked URI) and as console messages.
  await context.exposeBinding('__guildhallCspViolation', (_source, text) => {
    cspViolations.push(text);
  });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      const where = e.sourceFile ? ` at ${e.sourceFile}:${e.lineNumber}` : '';
      const blockedUri = String(e.blockedURI || '').slice(0, 80);
      window.__guildhallCspViolation(
        `${e.effectiveDirective} blocked ${blockedUri || '(inline)'}${where}`,
      );
    });
  });

  page = await context.newPage();
  page.on('console', (msg) => {
    const text = msg.text();
    if (/Content Security Policy/i.test(text)) cspViolations.push(`console: ${text}`);
  });
  page.on('pageerror', (err) => pageErrors.push(String(err?.stack || err).slice(0, 500)));
  page.on('response', (res) => {
    if (res.status() >= 400) httpErrors.push(`${res.status()} ${res.request().method()} ${res.url()}`);
  });

  step = 'load /graphiql';
  const response = await page.goto(`${origin}/graphiql`, { waitUntil: 'load' });
  if (!response || !response.ok()) {
    throw new Error(`GET /graphiql answered ${response ? response.status() : 'nothing'}`);
  }
  const csp = response.headers()['content-security-policy'];
  if (!csp) throw new Error('GET /graphiql has no Content-Security-Policy header');
  console.log(`content-security-policy: ${csp}`);

  step = 'wait for the query editor';
  await page.waitForSelector('.graphiql-query-editor .CodeMirror', { state: 'visible' });
  await page.waitForSelector('.graphiql-execute-button', { state: 'visible' });

  step = 'open the Docs explorer';
  await page.click('.graphiql-sidebar button[aria-label="Show Documentation Explorer"]');
  await page.waitForSelector('.graphiql-doc-explorer', { state: 'visible' });
  step = 'Docs explorer lists the Query root type';
  try {
    // "query: Query" under Root Types, once the schema has been introspected.
    await page.waitForFunction(() =>
      [...document.querySelectorAll('.graphiql-doc-explorer .graphiql-doc-explorer-root-type')].some(
        (el) => el.parentElement?.textContent?.replace(/\s+/g, ' ').trim() === 'query: Query',
      ),
    );
  } catch {
    const text = await page
      .$eval('.graphiql-doc-explorer', (el) => el.innerText.slice(0, 500))
      .catch(() => '(none)');
    throw new Error(`the Docs explorer does not list "query: Query"; it shows: ${JSON.stringify(text)}`);
  }

  // GraphiQL's dialogs inject a <style> element (body scroll lock): the page's CSP must allow it.
  step = 'open and close the settings dialog';
  await page.click('.graphiql-sidebar button[aria-label="Open settings dialog"]');
  await page.waitForSelector('.graphiql-dialog', { state: 'visible' });
  await page.keyboard.press('Escape');
  await page.waitForSelector('.graphiql-dialog', { state: 'detached' });

  step = 'fill the Headers editor';
  await page.click('.graphiql-editor-tools button[data-name="headers"]');
  const headersSelector = '.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror';
  await page.waitForSelector(headersSelector, { state: 'visible' });
  const headers = JSON.stringify({ Authorization: `Bearer ${token}` });
  await page.evaluate(
    ([sel, value]) => document.querySelector(sel).CodeMirror.setValue(value),
    [headersSelector, headers],
  );

  step = 'fill the query editor';
  await page.evaluate(() =>
    document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue('{ viewer { name } }'),
  );

  step = 'run the query';
  await page.click('.graphiql-execute-button');
  try {
    await page.waitForFunction(
      (expected) => {
        const el = document.querySelector('.graphiql-response .CodeMirror');
        return !!el && el.CodeMirror.getValue().includes(expected);
      },
      name,
    );
  } catch {
    const shown = await page
      .evaluate(() => document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue() ?? '(no result pane)')
      .catch(() => '(unreadable)');
    throw new Error(`the result pane does not show ${JSON.stringify(name)}; it shows: ${shown.slice(0, 1000)}`);
  }
  const result = await page.evaluate(() =>
    document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue(),
  );
  let parsed;
  try {
    parsed = JSON.parse(result);
  } catch {
    throw new Error(`the result pane is not JSON: ${result.slice(0, 1000)}`);
  }
  if (parsed.errors || parsed.data?.viewer?.name !== name) {
    throw new Error(`unexpected result: ${result.slice(0, 1000)}`);
  }

  step = 'save the screenshot';
  await mkdir(path.dirname(screenshotPath), { recursive: true });
  await page.screenshot({ path: screenshotPath });
  console.log(`screenshot: ${screenshotPath}`);

  step = 'check for blocked requests, CSP violations and page errors';
  // Late reports (e.g. a violation dispatched after the last action) get a moment to arrive.
  await page.waitForTimeout(250);
  const found = [];
  if (blocked.length) found.push(`${blocked.length} request(s) to other origins`);
  if (cspViolations.length) found.push(`${cspViolations.length} Content-Security-Policy violation report(s) (events and console messages)`);
  if (pageErrors.length) found.push(`${pageErrors.length} uncaught page error(s)`);
  if (httpErrors.length) found.push(`${httpErrors.length} HTTP error response(s)`);
  if (found.length) throw new Error(found.join(', '));
}

const watchdog = setTimeout(() => {
  finish(new Error(`gave up after ${TOTAL_TIMEOUT_MS / 1000} s`));
  process.exit(1);
}, TOTAL_TIMEOUT_MS);
watchdog.unref();

let failure = null;
try {
  await run();
} catch (err) {
  failure = err;
  if (page) {
    const failShot = screenshotPath.replace(/(\.png)?$/, '-failure.png');
    try {
      await mkdir(path.dirname(failShot), { recursive: true });
      await page.screenshot({ path: failShot });
      console.error(`failure screenshot: ${failShot}`);
    } catch {
      // the page may be gone; the message says enough
    }
  }
} finally {
  if (browser) await browser.close().catch(() => {});
}
finish(failure);
process.exit(failure ? 1 : 0);
