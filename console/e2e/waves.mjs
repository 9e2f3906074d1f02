// Waves told in Chromium (Debian's /usr/bin/chromium driven by playwright-core) against a real
// hippo-api and two real sshd hosts, all started by tests/tests/console_waves_story.rs, which
// passes:
//
//   HIPPO_URL, HIPPO_ADMIN_PASSWORD, HIPPO_ARTIFACTS (screenshots go there),
//   HIPPO_WAVES ({env, app, config})
//
// The admin splits the config's hosts into waves `1, rest` with a pause after each wave in the
// config wizard; requests a release on the new-release page and runs it; the release page shows
// the two waves and the paused alert; the admin presses Continue and the release succeeds. Then
// a release waiting to run is cancelled from its row in the releases list. Then English (the
// list's headers fit at 1440 px). Prints a JSON summary line for the Rust side.
import { chromium } from 'playwright-core'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'

const BASE = must('HIPPO_URL').replace(/\/$/, '')
const ADMIN_PASSWORD = must('HIPPO_ADMIN_PASSWORD')
const ART = must('HIPPO_ARTIFACTS')
const C = JSON.parse(must('HIPPO_WAVES'))
const CHROMIUM = process.env.HIPPO_CHROMIUM ?? '/usr/bin/chromium'

function must(name) {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set (this script is started by tests/tests/console_waves_story.rs)`)
  return v
}

mkdirSync(ART, { recursive: true })
const step = (what) => console.log(`[waves] ${what}`)
function check(ok, what) {
  if (!ok) throw new Error(what)
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  chromiumSandbox: false,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
  ],
})
const consoleErrors = []
const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'zh-CN', acceptDownloads: true })
context.setDefaultTimeout(20_000)
const page = await context.newPage()
page.on('pageerror', (e) => consoleErrors.push(String(e)))

const $ = (id) => page.locator(`[data-test="${id}"]`)
const input = (id) =>
  page.locator(`input[data-test="${id}"], textarea[data-test="${id}"], [data-test="${id}"] input, [data-test="${id}"] textarea`).first()
async function shot(name) {
  await page.waitForTimeout(300)
  await page.screenshot({ path: join(ART, `waves-${name}.png`), fullPage: true })
}
async function nav(path) {
  await page.goto(`${BASE}${path}`)
  // A release page keeps its event stream open: the network is never idle there.
  if (/^\/releases\/\d+$/.test(path)) await $('release-header').waitFor()
  else await page.waitForLoadState('networkidle')
}
async function login(user, password) {
  await page.goto(`${BASE}/login`)
  await input('login-username').fill(user)
  await input('login-password').fill(password)
  await $('login-submit').click()
  await page.waitForURL((u) => u.pathname === '/releases')
}
async function confirmBox() {
  await page.locator('.el-message-box__btns .el-button--primary').click()
}
async function tokenOf(username, password) {
  const r = await fetch(`${BASE}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  })
  check(r.ok, `login ${username}: ${r.status}`)
  return (await r.json()).token
}
async function call(token, method, path, body) {
  const r = await fetch(`${BASE}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  })
  const text = await r.text()
  const out = { status: r.status, body: text ? JSON.parse(text) : null }
  check(r.ok, `${method} ${path}: ${r.status} ${text}`)
  return out.body
}
/** The release page's status tag says `status` (within `ms`). */
async function statusIs(status, ms = 60_000) {
  await page.locator(`[data-test="release-header"]`).waitFor()
  await page.locator(`h2 [data-status="${status}"]`).waitFor({ timeout: ms })
}
const summary = {}
try {
  const admin = await tokenOf('admin', ADMIN_PASSWORD)

  step('admin: waves `1, rest` and a pause after each wave, in the config wizard')
  await login('admin', ADMIN_PASSWORD)
  await nav(`/configs/${C.config}`)
  await $('wizard-next').click()
  await $('step-build').waitFor()
  await $('wizard-next').click()
  await $('step-deploy').waitFor()
  await input('cfg-waves').fill('1, rest')
  await $('cfg-pause').click()
  await shot('01-wizard-waves-zh')
  await $('wizard-save').click()
  await page.waitForURL(/\/apps$/)
  const cfg = await call(admin, 'GET', `/api/release-configs/${C.config}`)
  check(JSON.stringify(cfg.waves) === '["1","rest"]' && cfg.pause_after_wave === true, `the config saved: ${JSON.stringify(cfg)}`)

  step('admin: request a release and run it')
  await nav(`/releases/new?env=${C.env}&app=${C.app}`)
  await page.locator('[data-test="nr-commits"] .el-table__body tr').first().waitFor()
  await input('nr-name').fill('waves')
  await $('nr-submit').click()
  await page.waitForURL((u) => /\/releases\/\d+$/.test(u.pathname))
  const id = Number(page.url().split('/').pop())
  summary.waves = id
  await statusIs('approved', 10_000)
  await $('page-run').click()
  await confirmBox()

  step('the page shows the waves and pauses after wave 1')
  await $('release-paused').waitFor({ timeout: 60_000 })
  await $('wave-1').waitFor()
  await $('wave-2').waitFor()
  const w1 = await $('wave-1').textContent()
  const w2 = await $('wave-2').textContent()
  check(/web-\d/.test(w1) && /web-\d/.test(w2) && w1 !== w2, `the waves shown: ${w1} | ${w2}`)
  const paused = await call(admin, 'GET', `/api/releases/${id}`)
  check(paused.status === 'running' && paused.paused?.wave === 1, `paused after wave 1: ${JSON.stringify(paused.paused)}`)
  check(paused.hosts.filter((h) => h.status === 'switched').length === 1, `one host switched while paused: ${JSON.stringify(paused.hosts)}`)
  await shot('02-paused-zh')

  step('admin: Continue; the release succeeds')
  await $('page-continue').click()
  await confirmBox()
  await statusIs('succeeded', 60_000)
  await $('release-paused').waitFor({ state: 'hidden' })
  await shot('03-succeeded-zh')

  step('admin: cancel a release waiting to run, from its row in the list')
  const waiting = await call(admin, 'POST', '/api/releases', { config_id: C.config, name: 'waiting', branch: 'main' })
  check(waiting.status === 'approved', `the new release: ${waiting.status}`)
  summary.cancelled = waiting.id
  await nav('/releases')
  const row = $(`actions-${waiting.id}`)
  // Only the rows that can be cancelled offer it: not the succeeded one.
  check((await $(`actions-${id}`).locator('[data-test="action-cancel"]').count()) === 0, 'a succeeded release offers no cancel')
  await shot('04-list-cancel-zh')
  await row.locator('[data-test="action-cancel"]').click()
  await confirmBox()
  await row.locator('[data-test="action-cancel"]').waitFor({ state: 'detached' })
  const after = await call(admin, 'GET', `/api/releases/${waiting.id}`)
  check(after.status === 'cancelled', `after cancel in the list: ${after.status}`)
  await page.locator('[data-test="releases-table"] [data-status="cancelled"]').first().waitFor()
  await shot('05-list-cancelled-zh')

  step('English')
  await $('locale-en').click()
  await page.getByText('Releases').first().waitFor()
  await page.waitForTimeout(300)
  const cut = await page.locator('[data-test="releases-table"] th .cell').evaluateAll((cells) =>
    cells.filter((c) => c.scrollWidth > c.clientWidth).map((c) => c.textContent),
  )
  check(cut.length === 0, `releases headers cut off in English: ${cut}`)
  await shot('06-list-en')
  await nav(`/releases/${id}`)
  await $('wave-2').waitFor()
  await shot('07-waves-en')

  if (consoleErrors.length) throw new Error(`errors in the page:\n${consoleErrors.join('\n')}`)
  console.log(JSON.stringify({ ok: true, ...summary }))
} catch (e) {
  await shot('zz-failure').catch(() => {})
  console.error(`[waves] FAILED at ${page.url()}: ${e.stack ?? e}`)
  process.exitCode = 1
} finally {
  await browser.close()
}
