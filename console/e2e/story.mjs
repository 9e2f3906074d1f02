// The console's end-to-end story, told in Chromium (Debian's /usr/bin/chromium driven by
// playwright-core) against a real hippo-api, real sshd hosts and a real Git repository, all
// started by the Rust test tests/tests/console_story.rs, which passes them in:
//
//   HIPPO_URL, HIPPO_ADMIN_PASSWORD, HIPPO_REPO (bare repository path),
//   HIPPO_HOSTS (JSON [{name, addr, port, link}]: `link` is the host's deploy link on this
//   machine's disk), HIPPO_ARTIFACTS (screenshots go there)
//
// The story, in its order, each step asserted: log in; create an environment, two
// hosts, an app and a config through the wizard; a developer (limited role) requests a release
// through the new release form; a reviewer approves it in the browser; it runs and the release
// page shows both hosts' lanes and a before-release hook's output live (and resumes after the
// connection drops, every line once); roll back through the dialog and check the hosts' links
// on disk; switch to English and back; a user without `review` sees no review button. Around
// it, the other flows a user relies on, asserted too: a reject needs a comment and shows it,
// an edited release goes back to review, the status tabs' counts, the duration column, a
// refused and an accepted delete, an API token shown once then revoked, a password reset,
// login lockouts cleared by an admin, a notice's receiver answer for admins only, and the
// audit filters. Every page is photographed in both languages.
import { readlinkSync } from 'node:fs'
import http from 'node:http'
import { gzipSync } from 'node:zlib'
import net from 'node:net'
import { basename } from 'node:path'
import { artifacts, check, launch, must, newPage, on, stepper } from './lib.mjs'

const HIPPO = new URL(must('HIPPO_URL'))
const ADMIN_PASSWORD = must('HIPPO_ADMIN_PASSWORD')
const REPO = must('HIPPO_REPO')
const HOSTS = JSON.parse(must('HIPPO_HOSTS'))
const ART = artifacts()
const DEV = { username: 'dev', password: 'dev-password-1', newPassword: 'dev-password-2' }
const REV = { username: 'rev', password: 'rev-password-1' }

// The browser reaches Hippo through a TCP relay the story can cut, to drop a live event stream
// the way a flaky network does.
const relayed = new Set()
const relay = net.createServer((client) => {
  const upstream = net.connect(Number(HIPPO.port), HIPPO.hostname)
  const pair = [client, upstream]
  relayed.add(pair)
  const end = () => {
    client.destroy()
    upstream.destroy()
    relayed.delete(pair)
  }
  client.pipe(upstream)
  upstream.pipe(client)
  for (const s of pair) {
    s.on('error', end)
    s.on('close', end)
  }
})
await new Promise((resolve) => relay.listen(0, '127.0.0.1', resolve))
const BASE = `http://127.0.0.1:${relay.address().port}`
function dropConnections() {
  for (const [c, u] of relayed) {
    c.destroy()
    u.destroy()
  }
  relayed.clear()
}
const step = stepper('story')

// A DingTalk robot that refuses every message (as a real one does when the keyword is
// missing): the attempt fails, and what it answered is shown to administrators only.
const robotCalls = []
const robot = http.createServer((req, res) => {
  let body = ''
  req.on('data', (c) => (body += c))
  req.on('end', () => {
    robotCalls.push(body)
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ errcode: 310000, errmsg: 'keywords not in content' }))
  })
})
await new Promise((resolve) => robot.listen(0, '127.0.0.1', resolve))
const ROBOT_URL = `http://127.0.0.1:${robot.address().port}/robot/send?access_token=ROBOT-TOKEN-123`

const browser = await launch()
const consoleErrors = []
const page = await newPage(browser, consoleErrors)
const { $, input, fill, choose, confirmBox, expectText, nav, login, newRelease, shot } = on(() => page, { base: BASE, dir: ART })
// Every request the page makes must stay on Hippo: nothing is fetched from elsewhere.
const foreign = []
page.on('request', (r) => {
  const u = r.url()
  if (!u.startsWith(BASE) && !u.startsWith('data:') && !u.startsWith('blob:')) foreign.push(u)
})

// The JavaScript and CSS the page loaded, for the first-load budget.
const assets = new Set()
page.on('response', (r) => {
  const u = r.url()
  if (/\.(js|css)(\?|$)/.test(u)) assets.add(u)
})
/** The gzip size of these JS and CSS files (as hippo-api sends them compressed). */
async function loadedKB(urls) {
  let total = 0
  for (const u of urls) total += gzipSync(Buffer.from(await (await fetch(u)).arrayBuffer()), { level: 6 }).length
  return Math.round(total / 1024)
}
const BUDGET_KB = 400

async function logout() {
  await $('user-menu').click()
  await $('logout').click()
  await page.waitForURL((u) => u.pathname === '/login')
}
/** GET an API path as the logged-in user (the console's own session token). */
async function api(path) {
  const token = await page.evaluate(() => JSON.parse(localStorage.getItem('hippo.session') ?? '{}').token)
  const r = await fetch(`${HIPPO.origin}${path}`, { headers: { authorization: `Bearer ${token}` } })
  check(r.ok, `GET ${path}: ${r.status}`)
  return r.json()
}
/** The logged-in user (`who`, without `review`) sees release `id` with no review button. */
async function noReviewButtonFor(who, id) {
  await nav('/releases')
  await $(`actions-${id}`).waitFor()
  await $(`actions-${id}`).locator('[data-test="action-view"]').waitFor()
  const n = await $(`actions-${id}`).locator('[data-test="action-review"]').count()
  check(n === 0, `${who}, without \`review\`, sees a review button on release ${id}`)
}
async function setLocale(l) {
  await $(l === 'en' ? 'locale-en' : 'locale-zh').click()
}

try {
  // ── 1. Log in: an unknown path needs a session first.
  step('login page')
  await page.goto(`${BASE}/apps`)
  await page.waitForURL(/\/login\?redirect=/)
  await shot('01-login-zh')
  const loginAssets = new Set(assets)
  const loginKB = await loadedKB(loginAssets)
  await fill('login-username', 'admin')
  await fill('login-password', 'wrong password')
  await $('login-submit').click()
  await $('login-error').waitFor()
  await fill('login-password', ADMIN_PASSWORD)
  await $('login-submit').click()
  await page.waitForURL((u) => u.pathname === '/apps') // back where the user wanted to go
  // First load: the login page, then the releases list (what a user opens first), each on its
  // own and together (everything a new visitor downloads before seeing the list).
  assets.clear()
  await page.goto(`${BASE}/releases`)
  await $('releases-table').waitFor()
  const releasesKB = await loadedKB(assets)
  const firstLoadKB = await loadedKB(new Set([...loginAssets, ...assets]))
  console.log(`[story] first load, compressed JS+CSS: login page ${loginKB} KB, releases list ${releasesKB} KB, both ${firstLoadKB} KB (budget ${BUDGET_KB} KB)`)
  check(firstLoadKB <= BUDGET_KB, `the first load is over budget: ${firstLoadKB} KB`)

  // ── 2. An environment (and one made by mistake, deleted again).
  step('environments')
  await nav('/environments')
  for (const [name, tag] of [['Production', 'prod'], ['Scratch', 'scratch']]) {
    await $('env-new').click()
    await fill('named-name', name)
    await fill('named-tag', tag)
    await $('named-save').click()
    await page.locator('[data-test="env-table"]').getByText(name, { exact: true }).waitFor()
  }
  await $('env-delete-scratch').click()
  await confirmBox()
  await page.locator('[data-test="env-table"]').getByText('Scratch', { exact: true }).waitFor({ state: 'detached' })
  await shot('02-environments-zh')

  // ── Two hosts.
  step('hosts')
  await nav('/hosts')
  for (const h of HOSTS) {
    await $('host-new').click()
    await choose('host-env', 'Production')
    await fill('host-name', h.name)
    await fill('host-addr', h.addr)
    await fill('host-port', h.port)
    await fill('host-user', 'root')
    await fill('host-category', 'web')
    await $('host-save').click()
    await page.locator('[data-test="hosts-table"]').getByText(h.name, { exact: true }).waitFor()
  }
  await $('show-key').click()
  await $('platform-key').waitFor()
  await shot('03-hosts-zh')

  // An environment that hosts use cannot be deleted: the API's refusal is shown as it is.
  await nav('/environments')
  await $('env-delete-prod').click()
  await confirmBox()
  const refusal = (await page.locator('.el-message--error').first().textContent({ timeout: 10_000 })) ?? ''
  check(/refer|host|使用|引用/i.test(refusal), `deleting a used environment: ${refusal}`)
  await page.locator('[data-test="env-table"]').getByText('Production', { exact: true }).waitFor()

  // ── An app, then its release config through the wizard.
  step('app and config wizard')
  await nav('/apps')
  await $('app-new').click()
  await fill('named-name', 'Cart')
  await fill('named-tag', 'cart')
  await $('named-save').click()
  await $('config-new-cart').click()
  await page.waitForURL(/\/configs\/new/)
  await choose('cfg-env', 'Production')
  for (const h of HOSTS) await $(`cfg-host-${h.name}`).click()
  await fill('cfg-repo', REPO)
  await $('cfg-review').click()
  // A DingTalk robot: its URL (with the access token) and secret are write-only.
  await $('notice-add').click()
  await fill('notice-webhook_url-0', ROBOT_URL)
  await fill('notice-secret-0', 'SEC-ROBOT-SECRET-456')
  await shot('04-wizard-basics-zh')
  await $('wizard-next').click()
  await $('step-build').waitFor()
  await shot('05-wizard-build-zh')
  await $('wizard-next').click()
  // A relative deploy path is refused by the API: the error shows next to the field.
  await fill('cfg-deploy-path', 'www/app')
  await fill('cfg-versions-path', '/srv/hippo/versions')
  await fill('cfg-before-release', 'echo "hello from $HIPPO_HOST_NAME"\nsleep 3\n')
  await $('wizard-save').click()
  const fieldError = page.locator('[data-test="step-deploy"] .el-form-item__error').first()
  await fieldError.waitFor()
  check(/deploy_path|absolute|\//.test((await fieldError.textContent()) ?? ''), 'the deploy path error names the problem')
  await shot('06-wizard-deploy-field-error-zh')
  await fill('cfg-deploy-path', '/srv/www/app')
  await $('wizard-save').click()
  await page.waitForURL(/\/apps$/)
  await page.locator('[data-test="apps-table"]').getByText('/srv/www/app').waitFor()
  await shot('07-apps-zh')

  // ── Roles and users: a developer may request, a reviewer may review and release.
  step('roles and users')
  await nav('/system/roles')
  for (const [name, perms] of [['developer', ['request']], ['reviewer', ['review', 'release']]]) {
    await $('role-new').click()
    await fill('role-name', name)
    for (const p of perms) await $(`perm-${p}`).click()
    await $('role-save').click()
    await page.locator('[data-test="roles-table"]').getByText(name, { exact: true }).waitFor()
  }
  await shot('08-roles-zh')
  await nav('/system/users')
  for (const [u, role] of [[DEV, 'developer'], [REV, 'reviewer']]) {
    await $('user-new').click()
    await fill('user-username', u.username)
    await fill('user-password', u.password)
    await $('binding-add').click()
    await choose('binding-role-0', role)
    await choose('binding-env-0', 'Production')
    await $('user-save').click()
    await page.locator('[data-test="users-table"]').getByText(u.username, { exact: true }).waitFor()
  }
  await shot('09-users-zh')

  // ── 3. The developer requests a release with the new release form.
  async function requestRelease(title) {
    await newRelease('Production', 'Cart')
    await fill('nr-name', title)
    await $('nr-summary').getByText(HOSTS[0].name).waitFor()
    await $('nr-submit').click()
    await page.waitForURL(/\/releases\/\d+$/)
    return Number(page.url().split('/').pop())
  }
  step('developer requests a release')
  await logout()
  await login(DEV.username, DEV.password)
  // The developer's menu has no administration, and GET /api/me says why.
  check((await $('nav-users').count()) === 0, 'a developer sees the Users page in the menu')
  const devMe = await api('/api/me')
  check(devMe.is_admin === false && devMe.environments.some((e) => e.permissions.includes('request')), `/api/me for the developer: ${JSON.stringify(devMe)}`)
  check(!devMe.everywhere.includes('review') && !devMe.environments.some((e) => e.permissions.includes('review')), 'the developer may not review')
  await nav('/releases/new')
  await choose('nr-env', 'Production')
  await choose('nr-app', 'Cart')
  await page.locator('[data-test="nr-commits"] .el-table__row').first().waitFor()
  await $('nr-summary').getByText(HOSTS[1].name).waitFor()
  // The title is prefilled from the picked commit's message; the summary says review applies.
  const prefilled = await input('nr-name').inputValue()
  const firstCommit = (await page.locator('[data-test="nr-commits"] .el-table__row').first().textContent()) ?? ''
  check(prefilled.length > 0 && firstCommit.includes(prefilled), `title "${prefilled}" from the commit "${firstCommit}"`)
  await $('nr-summary').getByText('需要审核通过后才能发布').waitFor()
  await shot('10-new-release-zh')
  const first = await requestRelease('第一次发布 first release')
  await page.locator('.page-head [data-status="pending_review"]').waitFor()
  await noReviewButtonFor(DEV.username, first)
  await shot('11-releases-dev-zh')

  // ── 4. The reviewer approves it in the browser, 5. runs it and watches it live.
  /** As the reviewer: review `id` from the list (the dialog shows the release's config). */
  async function openReview(id) {
    await nav('/releases')
    await $('tab-pending_review').click()
    await $(`actions-${id}`).locator('[data-test="action-review"]').click()
    await $('review-hosts').getByText(HOSTS[1].name).waitFor()
    await $('review-snapshot').locator('.el-collapse-item__header').click()
    const hook = (await $('review-hook-before_release').textContent()) ?? ''
    check(hook.includes('hello from $HIPPO_HOST_NAME'), `the review shows the release's hooks: ${hook}`)
  }
  async function approveAndRun(id, comment) {
    await openReview(id)
    await fill('review-comment', comment)
    await shot(`review-${id}-zh`)
    await $('review-approve').click()
    await $('tab-approved').click()
    await $(`actions-${id}`).locator('[data-test="action-run"]').waitFor()
    await $(`release-link-${id}`).click()
    await page.waitForURL(new RegExp(`/releases/${id}$`))
    await $('page-run').click()
    await confirmBox()
  }
  step('reviewer approves and runs the first release')
  await logout()
  await login(REV.username, REV.password)
  await approveAndRun(first, '看过了 LGTM')
  for (const h of HOSTS) await $(`lane-${h.name}`).waitFor()
  // The before-release hook's output arrives while the release is still running.
  await $(`lane-${HOSTS[0].name}`).click()
  await expectText(`hello from ${HOSTS[0].name}`, 90_000)
  const liveWhenSeen = await $('live').first().isVisible()
  await shot('12-release-live-zh')
  // The connection drops mid-release (the hook is still sleeping): the page says so, resumes
  // after the last event it had, and ends with every line once (checked against the store).
  dropConnections()
  await $('reconnecting').waitFor({ timeout: 10_000 })
  await $('live').first().waitFor({ timeout: 30_000 })
  await page.locator('.page-head [data-status="succeeded"]').waitFor({ timeout: 120_000 })
  check(liveWhenSeen, 'the hook output was not seen while the stream was live')
  for (const h of HOSTS) {
    const state = await $(`lane-${h.name}`).locator('[data-state]').getAttribute('data-state')
    check(state === 'success', `lane ${h.name} ended ${state}`)
  }
  check((await $('release-header').textContent()).includes('看过了 LGTM'), 'the header shows the review comment')
  await $(`lane-${HOSTS[0].name}`).click() // back to the whole log
  await page.waitForTimeout(1000)
  const resumedLines = Number(await $('log-count').getAttribute('data-n'))
  await shot('13-release-succeeded-zh')
  // Every event's lines, once: the Rust side compares with the stored events.
  await page.reload()
  await page.locator('.page-head [data-status="succeeded"]').waitFor()
  await page.waitForTimeout(1000)
  const firstLines = Number(await $('log-count').getAttribute('data-n'))
  const liveAfterFirst = HOSTS.map((h) => basename(readlinkSync(h.link)))

  // ── A reject needs a comment, shows it, and an edit sends the release back to review.
  step('reject with a comment, then edit')
  await logout()
  await login(DEV.username, DEV.password)
  const risky = await requestRelease('有风险的发布 risky release')
  await logout()
  await login(REV.username, REV.password)
  await openReview(risky)
  await $('review-reject').click()
  const noComment = (await $('review-error').textContent()) ?? ''
  check(/reason|原因/.test(noComment), `a reject without a comment: ${noComment}`)
  await fill('review-comment', '周五不发布 not on a Friday')
  await $('review-reject').click()
  await $('review-dialog').waitFor({ state: 'hidden' })
  await $('tab-closed').click()
  const rejectedRow = $(`actions-${risky}`).locator('xpath=ancestor::tr')
  await rejectedRow.locator('[data-status="rejected"]').waitFor()
  await rejectedRow.locator('[data-status="rejected"]').hover()
  await page.locator('.el-popper:visible', { hasText: 'not on a Friday' }).waitFor()
  check((await $('tab-closed').getAttribute('data-count')) === '1', 'the rejected / cancelled tab counts one')
  await shot('16-rejected-zh')
  await logout()
  await login(DEV.username, DEV.password)
  await $('tab-closed').click()
  await $(`actions-${risky}`).locator('[data-test="action-edit"]').click()
  await fill('edit-name', '改过的发布 edited release')
  await $('edit-save').click()
  await $('edit-dialog').waitFor({ state: 'hidden' })
  await $('tab-pending_review').click()
  await $(`release-link-${risky}`).getByText('edited release').waitFor()
  check((await $('tab-closed').getAttribute('data-count')) === '0', 'the edited release left the rejected tab')

  // ── A second release, so there is something to roll back from.
  step('second release')
  const second = await requestRelease('第二次发布 second release')
  await logout()
  await login(REV.username, REV.password)
  await approveAndRun(second, 'ok')
  await page.locator('.page-head [data-status="succeeded"]').waitFor({ timeout: 120_000 })
  const liveAfterSecond = HOSTS.map((h) => basename(readlinkSync(h.link)))
  check(liveAfterSecond.every((v, i) => v !== liveAfterFirst[i]), `the second release switched the hosts: ${liveAfterSecond}`)

  // ── 6. Roll back through the dialog (the developer requests it; review applies).
  step('rollback')
  await logout()
  await login(DEV.username, DEV.password)
  await nav(`/releases/${second}`)
  await $('page-rollback').click()
  const dialog = $('rollback-dialog')
  await dialog.locator('.el-table__row').nth(1).waitFor()
  await shot('14-rollback-dialog-zh')
  // The grid marks the live version on every host; pick the first release's.
  const liveRow = $(`rollback-pick-${liveAfterSecond[0]}`).locator('xpath=ancestor::tr')
  check((await liveRow.locator('.el-tag--success').count()) === HOSTS.length, 'the live version is marked on both hosts')
  await $(`rollback-pick-${liveAfterFirst[0]}`).click()
  await $('rollback-submit').click()
  await page.waitForURL((u) => /^\/releases\/\d+$/.test(u.pathname) && u.pathname !== `/releases/${second}`)
  const rollback = Number(page.url().split('/').pop())
  await logout()
  await login(REV.username, REV.password)
  await approveAndRun(rollback, '回滚 ok')
  await page.locator('.page-head [data-status="succeeded"]').waitFor({ timeout: 120_000 })
  await shot('15-rollback-succeeded-zh')
  // The hosts' links on disk point at the first release's version again.
  const liveAfterRollback = HOSTS.map((h) => basename(readlinkSync(h.link)))
  check(JSON.stringify(liveAfterRollback) === JSON.stringify(liveAfterFirst), `after the rollback the links point at ${liveAfterRollback}, not ${liveAfterFirst}`)

  // ── The list: tabs count what they gather, finished releases show how long they took.
  step('releases list')
  await nav('/releases')
  const count = async (tab) => Number(await $(`tab-${tab}`).getAttribute('data-count'))
  check((await count('all')) === 4 && (await count('succeeded')) === 3 && (await count('pending_review')) === 1, 'tab counts')
  check((await count('running')) === 0 && (await count('failed')) === 0 && (await count('approved')) === 0, 'tab counts (idle)')
  const took = (await $(`duration-${first}`).textContent()) ?? ''
  check(/\d/.test(took), `the first release's duration: "${took}"`)
  await $(`release-link-${rollback}`).locator('xpath=..').getByText('回滚', { exact: true }).waitFor()

  // ── A notice's receiver answered: everyone sees that it failed, only admins what it said.
  step('notices')
  await nav(`/releases/${first}`)
  await page.getByRole('tab', { name: '通知' }).click()
  await $('notices').getByText('310000').first().waitFor()
  check((await $('notices').locator('.el-table__expand-icon').count()) === 0, 'a developer sees no notice detail')
  check(robotCalls.length > 0 && !robotCalls.some((b) => b.includes('SEC-ROBOT-SECRET-456')), 'the robot was called, without the secret in the message')

  // ── As the admin: tokens, a password reset, lockouts, the audit trail, notice details.
  step('admin: notice detail')
  await logout()
  await login('admin', ADMIN_PASSWORD)
  await nav(`/releases/${first}`)
  await page.getByRole('tab', { name: '通知' }).click()
  await $('notices').locator('.el-table__expand-icon').first().click()
  await $('notice-detail').getByText('keywords not in content').first().waitFor()
  await shot('17-notice-detail-zh')

  step('admin: an API token, shown once, then revoked')
  await nav('/system/tokens')
  await $('token-new').click()
  await fill('token-name', 'ci-bot')
  await $('token-save').click()
  const token = ((await $('token-value').textContent()) ?? '').trim()
  check(token.length >= 20, `the new token is shown: ${token}`)
  const withToken = () => fetch(`${HIPPO.origin}/api/me`, { headers: { authorization: `Bearer ${token}` } })
  check((await withToken()).status === 200, 'the new token works')
  await shot('18-token-created-zh')
  await nav('/system/tokens')
  await $('tokens-table').getByText('ci-bot', { exact: true }).waitFor()
  check((await $('token-value').count()) === 0 && !(await page.content()).includes(token), 'the token is shown only once')
  await $('token-revoke-ci-bot').click()
  await confirmBox()
  await $('tokens-table').getByText('ci-bot', { exact: true }).waitFor({ state: 'detached' })
  check((await withToken()).status === 401, 'a revoked token is refused')

  step('admin: a password reset')
  await nav('/system/users')
  await $(`user-reset-${DEV.username}`).click()
  await fill('reset-password', DEV.newPassword)
  await $('reset-save').click()
  await input('reset-password').waitFor({ state: 'hidden' }) // the dialog closes once it is saved
  const loginAs = (username, password) =>
    fetch(`${HIPPO.origin}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) })
  const oldStatus = (await loginAs(DEV.username, DEV.password)).status
  check(oldStatus === 401, `the old password no longer works: ${oldStatus}`)
  const newStatus = (await loginAs(DEV.username, DEV.newPassword)).status
  check(newStatus === 200, `the new password works: ${newStatus}`)

  step('admin: login lockouts')
  // Someone guesses mallory's password until Hippo locks the name out.
  let locked = false
  for (let i = 0; i < 12 && !locked; i++) locked = (await loginAs('mallory', `guess-${i}`)).status === 429
  check(locked, 'repeated failed logins end in 429')
  await nav('/system/lockouts')
  await $('lockout-clear-mallory').waitFor()
  await shot('19-lockouts-zh')
  await $('lockout-clear-mallory').click()
  await confirmBox()
  await $('lockout-clear-mallory').waitFor({ state: 'detached' })
  check((await loginAs('mallory', 'guess-again')).status === 401, 'mallory may try again once cleared')

  step('admin: audit filters')
  await nav('/system/audit')
  await choose('audit-entity', '发布申请')
  await page.waitForLoadState('networkidle')
  const entities = await $('audit-table').locator('[data-test="audit-entity-cell"]').evaluateAll((els) => els.map((e) => e.dataset.entity))
  check(entities.length >= 5 && entities.every((e) => e === 'release'), `audit by entity: ${entities}`)
  await fill('audit-actor', REV.username)
  await input('audit-actor').press('Enter')
  await page.waitForLoadState('networkidle')
  await page.waitForTimeout(500)
  const actors = await $('audit-table').locator('[data-test="audit-actor-cell"]').allTextContents()
  const actions = await $('audit-table').locator('[data-test="audit-action-cell"]').allTextContents()
  check(actors.length >= 3 && actors.every((a) => a === REV.username), `audit by actor: ${actors}`)
  check(actions.every((a) => a === 'status'), `the reviewer changed statuses only: ${actions}`)
  await $('audit-table').getByText('not on a Friday').first().waitFor() // the reject, with its comment
  await $('audit-table').locator('.el-table__expand-icon').first().click()
  await $('audit-table').locator('.changes').first().waitFor()
  await shot('19-audit-filtered-zh')

  // ── 7. English and back; every page photographed in both languages (as the admin).
  step('languages')
  const pages = [
    ['releases', '/releases'], ['release', `/releases/${first}`], ['new-release', '/releases/new'], ['apps', '/apps'],
    ['config-edit', '/configs/1'], ['hosts', '/hosts'], ['environments', '/environments'], ['users', '/system/users'],
    ['roles', '/system/roles'], ['tokens', '/system/tokens'], ['lockouts', '/system/lockouts'], ['audit', '/system/audit'],
  ]
  await nav('/releases')
  await setLocale('en')
  await expectText('New release')
  check((await page.title()) === 'Releases · Hippo', `tab title: ${await page.title()}`)
  await page.reload() // remembered
  await $('tab-closed').getByText('Rejected / cancelled').waitFor()
  for (const [name, path] of pages) {
    await nav(path)
    await shot(`20-${name}-en`)
    const html = await page.content()
    check(!html.includes('ROBOT-TOKEN-123') && !html.includes('SEC-ROBOT-SECRET-456'), `${path} shows a notice secret`)
  }
  await nav('/releases')
  await setLocale('zh')
  await expectText('新建发布')
  check((await page.title()) === '发布申请 · Hippo', `tab title: ${await page.title()}`)
  for (const [name, path] of pages) {
    await nav(path)
    await shot(`21-${name}-zh`)
  }

  // ── 8. A user without `review` sees no review button; the reviewer does (same release).
  step('review buttons follow permissions')
  const pending = risky
  await logout()
  await login(DEV.username, DEV.newPassword)
  await noReviewButtonFor(DEV.username, pending)
  await page.goto(`${BASE}/releases/${pending}`) // (its event stream stays open: never network-idle)
  await page.locator('.page-head [data-status="pending_review"]').waitFor()
  check((await $('page-review').count()) === 0, 'a user without `review` sees a review button on the release page')
  await logout()
  await login(REV.username, REV.password)
  await nav('/releases')
  await $(`actions-${pending}`).locator('[data-test="action-review"]').waitFor()

  await logout()
  await setLocale('en')
  await expectText('Ship code from Git')
  await shot('22-login-en')
  await setLocale('zh')

  check(consoleErrors.length === 0, `errors in the page:\n${consoleErrors.join('\n')}`)
  check(foreign.length === 0, `requests outside Hippo:\n${foreign.join('\n')}`)
  console.log(JSON.stringify({ ok: true, first, second, rollback, firstLines, resumedLines, firstLoadKB, loginKB, releasesKB }))
} catch (e) {

  await shot('zz-failure').catch(() => {})
  console.error(`[story] FAILED at ${page.url()}: ${e.stack ?? e}`)
  process.exitCode = 1
} finally {
  await browser.close()
  relay.close()
  robot.close()
}
