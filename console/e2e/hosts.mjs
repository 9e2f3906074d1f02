// The Hosts page and the web terminal, told in Chromium (Debian's /usr/bin/chromium driven by
// playwright-core) against a real hippo-api and real sshd hosts, started by the Rust test
// tests/tests/console_hosts_story.rs, which passes them in:
//
//   HIPPO_URL, HIPPO_ADMIN_PASSWORD, HIPPO_ARTIFACTS (screenshots go there),
//   HIPPO_KEY_HOST ({addr, port}: root logs in with the platform key),
//   HIPPO_PASSWORD_HOST ({addr, port, user, password}: a user with a password and no key yet)
//
// The admin imports hosts (a file with a bad row first: nothing is imported and the row is
// named), checks a selection, installs the platform key on the password host through the
// dialog, opens a terminal on a host, types `echo $((6*7))` and sees 42, then replays the
// session on the terminal sessions page. The pages are photographed in both languages.
import { artifacts, launch, must, newPage, on, stepper } from './lib.mjs'

const BASE = must('HIPPO_URL').replace(/\/$/, '')
const ADMIN_PASSWORD = must('HIPPO_ADMIN_PASSWORD')
const ART = artifacts()
const KEY_HOST = JSON.parse(must('HIPPO_KEY_HOST'))
const PW_HOST = JSON.parse(must('HIPPO_PASSWORD_HOST'))
const step = stepper('hosts')

const browser = await launch()
const consoleErrors = []
const page = await newPage(browser, consoleErrors)
const { $, input, expectText, nav, login, shot } = on(() => page, { base: BASE, dir: ART, prefix: 'hosts' })
/** The row of the hosts table that shows this host name. */
const row = (name) => page.locator('[data-test="hosts-table"] .el-table__body tr', { hasText: name }).first()

try {
  step('log in')
  await login('admin', ADMIN_PASSWORD)

  step('import: a bad row imports nothing and is named')
  await nav('/hosts')
  await $('hosts-import').click()
  const bad = `name,addr,port,user,environment\nweb-a,${KEY_HOST.addr},${KEY_HOST.port},root,prod\nweb-b,${PW_HOST.addr},99999,${PW_HOST.user},prod\n`
  await input('import-content').fill(bad)
  await $('import-submit').click()
  await $('import-errors').waitFor()
  await expectText('line 3: port')
  await shot('01-import-row-error-zh')
  const good = `name,addr,port,user,environment\nweb-a,${KEY_HOST.addr},${KEY_HOST.port},root,prod\nweb-b,${PW_HOST.addr},${PW_HOST.port},${PW_HOST.user},prod\n`
  await input('import-content').fill(good)
  await $('import-submit').click()
  await $('import-dialog').waitFor({ state: 'hidden' })
  await row('web-b').waitFor()

  step('check a selection: the key host is ok, the password host does not take the key yet')
  for (const name of ['web-a', 'web-b']) await row(name).locator('.el-checkbox').click()
  await $('hosts-check-selected').click()
  await row('web-a').locator('[data-test="check-ok"]').waitFor({ timeout: 60_000 })
  await row('web-b').locator('[data-test="check-failed"]').waitFor()
  await shot('02-checked-zh')

  step('install the key with the password')
  await row('web-b').locator('[data-test="host-install-key"]').click()
  await input('install-key-password').fill(PW_HOST.password)
  await shot('03-install-key-zh')
  await $('install-key-submit').click()
  await $('install-key-result').waitFor({ timeout: 60_000 })
  if ((await input('install-key-password').inputValue()) !== '') throw new Error('the password field kept the password')
  if ((await page.content()).includes(PW_HOST.password)) throw new Error('the page shows the password')
  await shot('04-key-installed-zh')
  await page.keyboard.press('Escape')
  await row('web-b').locator('[data-test="check-ok"]').waitFor({ timeout: 30_000 })

  step('terminal: echo $((6*7)) shows 42')
  await row('web-a').locator('[data-test="host-terminal"]').click()
  await page.waitForURL((u) => /\/hosts\/\d+\/terminal$/.test(u.pathname))
  await page.locator('[data-test="terminal-state"]', { hasText: '已连接' }).waitFor()
  await page.locator('[data-test="terminal"] .xterm').click()
  await page.keyboard.type('echo $((6*7))')
  await page.keyboard.press('Enter')
  await page.waitForFunction(() => {
    const rows = document.querySelector('[data-test="terminal"] .xterm-rows')
    return rows && /^42\s*$/m.test(rows.innerText)
  })
  await shot('05-terminal-zh')
  await page.keyboard.type('exit')
  await page.keyboard.press('Enter')
  await $('terminal-end').waitFor()

  step('the session is recorded for admins')
  await nav('/system/terminal-sessions')
  await page.locator('[data-test="terminal-sessions"] .el-table__body tr').first().waitFor()
  await page.locator('[data-test="terminal-session-view"]').first().click()
  await page.locator('[data-test="terminal-typed"]', { hasText: 'echo $((6*7))' }).waitFor()
  await shot('06-sessions-zh')
  await page.keyboard.press('Escape')

  step('English')
  await $('locale-en').click()
  for (const [name, path] of [['hosts', '/hosts'], ['sessions', '/system/terminal-sessions']]) {
    await nav(path)
    await shot(`10-${name}-en`)
  }
  await nav('/hosts')
  await expectText('Last check')
  await row('web-a').locator('[data-test="host-terminal"]').click()
  await page.locator('[data-test="terminal-state"]', { hasText: 'connected' }).waitFor()
  await shot('11-terminal-en')

  if (consoleErrors.length) throw new Error(`errors in the page:\n${consoleErrors.join('\n')}`)
  console.log(JSON.stringify({ ok: true }))
} catch (e) {
  await shot('zz-failure').catch(() => {})
  console.error(`[hosts] FAILED at ${page.url()}: ${e.stack ?? e}`)
  process.exitCode = 1
} finally {
  await browser.close()
}
