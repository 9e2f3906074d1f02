// What every browser story in console/e2e shares: the environment the Rust side passes in
// (tests/src/browser.rs starts each script with HIPPO_URL, HIPPO_ADMIN_PASSWORD,
// HIPPO_ARTIFACTS and HIPPO_CHROMIUM, plus the story's own variables), Debian's Chromium
// launched the same way, a page set up the same way, and the locators and screenshots the
// scripts use. Each script keeps its own flow.
import { chromium } from 'playwright-core'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'

/** The value of an environment variable the Rust story must set. */
export function must(name) {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set (the scripts in console/e2e are started by tests/tests/console_*story.rs)`)
  return v
}

/** Fails the story with `what` unless `ok`. */
export function check(ok, what) {
  if (!ok) throw new Error(what)
}

/** A logger of the story's steps, each line tagged `[tag]`. */
export const stepper = (tag) => (what) => console.log(`[${tag}] ${what}`)

/** The folder screenshots go to (HIPPO_ARTIFACTS), made if missing. */
export function artifacts() {
  const dir = must('HIPPO_ARTIFACTS')
  mkdirSync(dir, { recursive: true })
  return dir
}

/**
 * The API at `base` without the browser: `tokenOf` logs a user in, `call` sends a request with a
 * token and returns the answer's body (failing the story unless it is a 2xx).
 */
export function apiAt(base) {
  async function tokenOf(username, password) {
    const r = await fetch(`${base}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    })
    check(r.ok, `login ${username}: ${r.status}`)
    return (await r.json()).token
  }
  async function call(token, method, path, body) {
    const r = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    })
    const text = await r.text()
    const out = { status: r.status, body: text ? JSON.parse(text) : null }
    check(r.ok, `${method} ${path}: ${r.status} ${text}`)
    return out.body
  }
  return { tokenOf, call }
}

/** Debian's Chromium (or HIPPO_CHROMIUM), headless, without the sandbox and background traffic. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.HIPPO_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    chromiumSandbox: false,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
    ],
  })
}

/**
 * A page in a new context (1440×900, zh-CN, 20 s default time-out plus `options`) whose
 * uncaught errors are pushed onto `errors`.
 */
export async function newPage(browser, errors, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'zh-CN', ...options })
  context.setDefaultTimeout(20_000)
  const page = await context.newPage()
  page.on('pageerror', (e) => errors.push(String(e)))
  return page
}

/**
 * The helpers a story uses on the page `current()` returns (a script may switch pages):
 * locators by `data-test`, Element Plus inputs, selects and confirm boxes, navigation and
 * login against `base`, and full-page screenshots saved in `dir` as `<prefix>-<name>.png`
 * (`<name>.png` without a prefix).
 */
export function on(current, { base, dir, prefix = '' }) {
  const $ = (id) => current().locator(`[data-test="${id}"]`)
  // Element Plus puts attributes on the native <input>/<textarea> of el-input, on the root of
  // most other components.
  const input = (id) =>
    current()
      .locator(`input[data-test="${id}"], textarea[data-test="${id}"], [data-test="${id}"] input, [data-test="${id}"] textarea`)
      .first()
  async function fill(id, value) {
    await input(id).fill(String(value))
  }
  /** Opens an Element Plus select and picks the option with this text. */
  async function choose(id, text) {
    await $(id).click()
    await current().locator('.el-select-dropdown__item:visible', { hasText: text }).first().click()
  }
  /** Presses the primary button of the open Element Plus message box. */
  async function confirmBox() {
    await current().locator('.el-message-box__btns .el-button--primary').click()
  }
  async function expectText(text, timeout = 20_000) {
    await current().getByText(text, { exact: false }).first().waitFor({ timeout })
  }
  async function nav(path) {
    await current().goto(`${base}${path}`)
    await current().waitForLoadState('networkidle')
  }
  /**
   * `nav` that also opens a live release page: its event stream stays open, so the network is
   * never idle there; it waits for the release's header instead.
   */
  async function visit(path) {
    await current().goto(`${base}${path}`)
    if (/^\/releases\/\d+$/.test(path)) await $('release-header').waitFor()
    else await current().waitForLoadState('networkidle')
  }
  /** The release page's status tag says `status` (within `ms`). */
  async function statusIs(status, ms = 60_000) {
    await $('release-header').waitFor()
    await current().locator(`h2 [data-status="${status}"]`).waitFor({ timeout: ms })
  }
  /** Logs in on the login page and waits for the releases page it leads to. */
  async function login(user, password) {
    await current().goto(`${base}/login`)
    await fill('login-username', user)
    await fill('login-password', password)
    await $('login-submit').click()
    await current().waitForURL((u) => u.pathname === '/releases')
  }
  /** Opens the new-release page from the list and picks the environment and the app. */
  async function newRelease(env, app) {
    await nav('/releases')
    await $('new-release').click()
    await current().waitForURL(/\/releases\/new/)
    await choose('nr-env', env)
    await choose('nr-app', app)
    await current().locator('[data-test="nr-commits"] .el-table__row').first().waitFor()
  }
  async function shot(name) {
    const page = current()
    await page.waitForTimeout(300) // let transitions settle
    await page.screenshot({ path: join(dir, `${prefix ? `${prefix}-` : ''}${name}.png`), fullPage: true })
  }
  return { $, input, fill, choose, confirmBox, expectText, nav, visit, statusIs, login, newRelease, shot }
}
