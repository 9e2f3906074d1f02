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
import { apiAt, artifacts, check, launch, must, newPage, on, stepper } from './lib.mjs'

const BASE = must('HIPPO_URL').replace(/\/$/, '')
const ADMIN_PASSWORD = must('HIPPO_ADMIN_PASSWORD')
const ART = artifacts()
const C = JSON.parse(must('HIPPO_WAVES'))
const step = stepper('waves')

const browser = await launch()
const consoleErrors = []
const page = await newPage(browser, consoleErrors, { acceptDownloads: true })
const { $, input, confirmBox, visit: nav, statusIs, login, shot } = on(() => page, { base: BASE, dir: ART, prefix: 'waves' })
const { tokenOf, call } = apiAt(BASE)
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
