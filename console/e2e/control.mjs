// Release control told in Chromium (Debian's /usr/bin/chromium driven by playwright-core)
// against a real hippo-api and two real sshd hosts, all started by
// tests/tests/console_control_story.rs, which passes:
//
//   HIPPO_URL, HIPPO_ADMIN_PASSWORD, HIPPO_ARTIFACTS (screenshots go there),
//   HIPPO_CONTROL ({env, app, config, rev: {username, password}, slow: a file that makes the
//   before-release hook sleep, ready: the file web-2's hook needs})
//
// The admin requests a release for web-1 only (the host picker on the new-release page); the
// reviewer approves it to run at a set time, sees it scheduled (the page, the list) and watches
// it run by itself; cancels a release whose hook sleeps (the page says who); retries a release
// that failed on web-2 after fixing the host (the retry is for web-2 only and names the failed
// release), runs it, and downloads the release's whole log; retries another failed release from
// its row in the releases list (which opens the new retry, for web-2 only) and runs it. Then the
// same page in English.
// Prints a JSON summary line for the Rust side.
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { apiAt, artifacts, check, launch, must, newPage, on, stepper } from './lib.mjs'

const BASE = must('HIPPO_URL').replace(/\/$/, '')
const ADMIN_PASSWORD = must('HIPPO_ADMIN_PASSWORD')
const ART = artifacts()
const C = JSON.parse(must('HIPPO_CONTROL'))
const step = stepper('control')

const browser = await launch()
const consoleErrors = []
const page = await newPage(browser, consoleErrors, { acceptDownloads: true })
const { $, input, confirmBox, visit: nav, statusIs, login, shot } = on(() => page, { base: BASE, dir: ART, prefix: 'control' })
const { tokenOf, call } = apiAt(BASE)
async function logout() {
  await page.evaluate(() => localStorage.removeItem('hippo.session'))
}
const pad = (n) => String(n).padStart(2, '0')
/** A local time as the date picker takes it. */
function pickerTime(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

const summary = {}
try {
  const admin = await tokenOf('admin', ADMIN_PASSWORD)
  const rev = await tokenOf(C.rev.username, C.rev.password)

  step('admin: a release for web-1 only')
  await login('admin', ADMIN_PASSWORD)
  await nav(`/releases/new?env=${C.env}&app=${C.app}`)
  await $('nr-hosts').waitFor()
  await $('nr-host-web-2').click()
  await $('nr-subset').waitFor()
  await page.locator('[data-test="nr-commits"] .el-table__body tr').first().waitFor()
  await input('nr-name').fill('canary')
  await shot('01-subset-zh')
  await $('nr-submit').click()
  await page.waitForURL((u) => /\/releases\/\d+$/.test(u.pathname))
  const canary = Number(page.url().split('/').pop())
  summary.canary = canary
  const subset = await $('release-subset').textContent()
  check(subset.includes('web-1') && !subset.includes('web-2'), `the subset shown: ${subset}`)

  step('reviewer: approve to run in 12 s; scheduled on the page and in the list')
  await logout()
  await login(C.rev.username, C.rev.password)
  await nav(`/releases/${canary}`)
  await $('page-review').click()
  await $('review-schedule').click()
  const at = new Date(Date.now() + 12_000)
  await input('review-run-at').fill(pickerTime(at))
  await input('review-run-at').press('Enter')
  await shot('02-approve-schedule-zh')
  await $('review-approve').click()
  await statusIs('scheduled', 10_000)
  await $('run-at').waitFor()
  await shot('03-scheduled-zh')
  await nav('/releases')
  await page.locator(`[data-test="scheduled-at"]`).first().waitFor()
  await shot('04-list-scheduled-zh')
  await nav(`/releases/${canary}`)
  await statusIs('succeeded', 60_000)
  const started = await call(rev, 'GET', `/api/releases/${canary}`)
  summary.canaryLate = (Date.parse(started.started_at) - at.getTime()) / 1000

  step('reviewer: cancel a release whose hook sleeps')
  writeFileSync(C.slow, '')
  const slow = await call(admin, 'POST', '/api/releases', { config_id: C.config, name: 'slow', branch: 'main' })
  await call(rev, 'POST', `/api/releases/${slow.id}/approve`, {})
  await call(rev, 'POST', `/api/releases/${slow.id}/run`)
  summary.cancelled = slow.id
  await nav(`/releases/${slow.id}`)
  await statusIs('running', 30_000)
  // The hook is running on web-1 (the log on the page shows only the lines in view).
  for (let i = 0; ; i++) {
    const r = await fetch(`${BASE}/api/releases/${slow.id}/log`, { headers: { authorization: `Bearer ${rev}` } })
    if ((await r.text()).includes('web-1: running before_release hook')) break
    check(i < 60, 'the before-release hook did not start')
    await page.waitForTimeout(500)
  }
  await $('page-cancel').click()
  await confirmBox()
  await statusIs('cancelled', 30_000)
  const by = await $('cancelled-by').textContent()
  check(by.includes(C.rev.username), `cancelled by: ${by}`)
  await shot('05-cancelled-zh')
  rmSync(C.slow)

  step('reviewer: retry the host that failed, after fixing it')
  const failing = await call(admin, 'POST', '/api/releases', { config_id: C.config, name: 'v2', branch: 'main' })
  await call(rev, 'POST', `/api/releases/${failing.id}/approve`, {})
  await call(rev, 'POST', `/api/releases/${failing.id}/run`)
  summary.failed = failing.id
  await nav(`/releases/${failing.id}`)
  await statusIs('failed', 60_000)
  writeFileSync(C.ready, '')
  await $('page-retry').click()
  await confirmBox()
  await page.waitForURL((u) => u.pathname !== `/releases/${failing.id}` && /\/releases\/\d+$/.test(u.pathname))
  const retry = Number(page.url().split('/').pop())
  summary.retry = retry
  await $('retry-of').waitFor()
  const hosts = await $('release-subset').textContent()
  check(hosts.includes('web-2') && !hosts.includes('web-1'), `the retry's hosts: ${hosts}`)
  await shot('06-retry-zh')
  // The reviewer asked for the retry: another reviewer approves it.
  await call(admin, 'POST', `/api/releases/${retry}/approve`, {})
  await nav(`/releases/${retry}`)
  await $('page-run').click()
  await confirmBox()
  await statusIs('succeeded', 60_000)

  step('the whole log, downloaded')
  const [download] = await Promise.all([page.waitForEvent('download'), $('download-raw-log').click()])
  const log = readFileSync(await download.path(), 'utf8')
  check(download.suggestedFilename() === `release-${retry}.log`, `file name ${download.suggestedFilename()}`)
  check(log.includes(' web-2 prepare ') && log.includes(' server release succeeded'), `the log:\n${log}`)
  summary.logLines = log.trim().split('\n').length

  step('reviewer: retry the failed host from the failed release\'s row in the releases list')
  rmSync(C.ready)
  const again = await call(admin, 'POST', '/api/releases', { config_id: C.config, name: 'v3', branch: 'main' })
  await call(rev, 'POST', `/api/releases/${again.id}/approve`, {})
  await call(rev, 'POST', `/api/releases/${again.id}/run`)
  summary.listFailed = again.id
  await nav(`/releases/${again.id}`)
  await statusIs('failed', 60_000)
  writeFileSync(C.ready, '')
  await nav('/releases')
  const row = $(`actions-${again.id}`)
  await row.waitFor()
  // Only a failed release offers a retry: not the retry that succeeded.
  check((await $(`actions-${retry}`).locator('[data-test="action-retry"]').count()) === 0, 'a succeeded release offers no retry')
  await shot('07-list-retry-zh')
  await row.locator('[data-test="action-retry"]').click()
  await confirmBox()
  await page.waitForURL((u) => /\/releases\/\d+$/.test(u.pathname) && !['', String(again.id)].includes(u.pathname.split('/').pop()))
  const listRetry = Number(page.url().split('/').pop())
  summary.listRetry = listRetry
  const of = await $('retry-of').textContent()
  check(of.includes(String(again.id)), `the retry names the failed release #${again.id}: ${of}`)
  const listHosts = await $('release-subset').textContent()
  check(listHosts.includes('web-2') && !listHosts.includes('web-1'), `the list retry's hosts: ${listHosts}`)
  await call(admin, 'POST', `/api/releases/${listRetry}/approve`, {})
  await call(rev, 'POST', `/api/releases/${listRetry}/run`)
  await nav(`/releases/${listRetry}`)
  await statusIs('succeeded', 60_000)
  await shot('08-list-retry-succeeded-zh')

  step('English')
  await $('locale-en').click()
  await page.getByText('Retry of').first().waitFor()
  await shot('09-retry-en')
  await nav('/releases')
  await shot('10-list-en')

  if (consoleErrors.length) throw new Error(`errors in the page:\n${consoleErrors.join('\n')}`)
  console.log(JSON.stringify({ ok: true, ...summary }))
} catch (e) {
  await shot('zz-failure').catch(() => {})
  console.error(`[control] FAILED at ${page.url()}: ${e.stack ?? e}`)
  process.exitCode = 1
} finally {
  await browser.close()
}
