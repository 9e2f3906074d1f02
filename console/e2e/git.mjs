// Git webhooks, cloning a config and the Git server's host key, told in Chromium (Debian's
// /usr/bin/chromium driven by playwright-core) against a real hippo-api, real sshd hosts and a
// Git server reached over SSH, all started by tests/tests/console_git_story.rs, which passes:
//
//   HIPPO_URL, HIPPO_ADMIN_PASSWORD, HIPPO_ARTIFACTS (screenshots go there),
//   HIPPO_GIT ({config: prod's config id, main and feature: their head commits, fingerprint:
//   the Git server's host key, dev: {username, password}})
//
// The admin creates a GitHub webhook on prod's config (URL and secret shown once); this script
// then sends GitHub-format pushes the way GitHub does (signed with the secret: another branch,
// a bad signature, main, main again) and the dialog lists each with its outcome and reason; the
// accepted push's release runs by itself and its page names the stages in Chinese; the URL and
// secret are rotated (the old URL answers 404, the new one works). On the config the Git
// server's pinned key is shown and forgotten. The config is cloned to staging, choosing its
// host again. A review meets an edit made meanwhile and explains the 409 `changed`. A developer
// sees the webhook and the key but none of the buttons that would change them. Then English.
// Prints a JSON summary line for the Rust side.
import { createHmac, randomUUID } from 'node:crypto'
import { apiAt, artifacts, check, launch, must, newPage as openPage, on, stepper } from './lib.mjs'

const BASE = must('HIPPO_URL').replace(/\/$/, '')
const ADMIN_PASSWORD = must('HIPPO_ADMIN_PASSWORD')
const ART = artifacts()
const GIT = JSON.parse(must('HIPPO_GIT'))
const CONFIG = GIT.config
const RAW_STAGES = ['release', 'checkout', 'package', 'prepare', 'switch', 'cleanup', 'notify']
const step = stepper('git')

const browser = await launch()
const consoleErrors = []
const newPage = () => openPage(browser, consoleErrors)
let page = await newPage()
const { $, input, choose, confirmBox, nav, login, shot } = on(() => page, { base: BASE, dir: ART, prefix: 'git' })
/** The API as the logged-in user of `page` (the console's session token). */
async function apiAs(p, method, path, body) {
  const token = await p.evaluate(() => JSON.parse(localStorage.getItem('hippo.session') ?? '{}').token)
  const r = await fetch(`${BASE}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  })
  const text = await r.text()
  return { status: r.status, body: text ? JSON.parse(text) : null }
}
const api = (method, path, body) => apiAs(page, method, path, body)
const { tokenOf } = apiAt(BASE)

/** A push as GitHub sends it (its documented payload and headers), signed with `secret`. */
async function githubPush(url, secret, { ref, after, delivery = randomUUID(), event = 'push', badSignature = false }) {
  const payload =
    event === 'push'
      ? {
          ref, before: '0'.repeat(40), after, created: false, deleted: false, forced: false,
          repository: { id: 1, name: 'cart', full_name: 'acme/cart', clone_url: 'https://github.com/acme/cart.git' },
          pusher: { name: 'alice', email: 'alice@example.com' }, sender: { login: 'alice' },
          head_commit: { id: after, message: 'a change', timestamp: new Date().toISOString() },
          commits: [{ id: after, message: 'a change' }],
        }
      : { zen: 'Keep it logically awesome.', hook_id: 1, hook: { type: 'Repository', events: ['push'] } }
  const body = JSON.stringify(payload)
  const sig = createHmac('sha256', badSignature ? `${secret}-not` : secret).update(body).digest('hex')
  const r = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json', 'user-agent': 'GitHub-Hookshot/0c1e2f3', 'x-github-event': event,
      'x-github-delivery': delivery, 'x-github-hook-id': '1', 'x-hub-signature-256': `sha256=${sig}`,
    },
    body,
  })
  const text = await r.text()
  return { status: r.status, body: text ? JSON.parse(text) : null }
}

/** The log shows only the lines in view (following the end): the first lines are checkout's. */
async function scrollLogToTop() {
  await $('log').evaluate((el) => {
    el.scrollTop = 0
    el.dispatchEvent(new Event('scroll'))
  })
  await page.waitForTimeout(300)
}
/** A push as GitLab sends it (its documented "Push Hook"), proven by `X-Gitlab-Token`. */
async function gitlabPush(url, token, { ref, after }) {
  const body = JSON.stringify({
    object_kind: 'push', event_name: 'push', before: '0'.repeat(40), after, ref, checkout_sha: after,
    user_name: 'Alice', user_username: 'alice', project_id: 15,
    project: { id: 15, name: 'cart', path_with_namespace: 'acme/cart', git_ssh_url: 'git@gitlab.example.com:acme/cart.git' },
    commits: [{ id: after, message: 'a change', timestamp: new Date().toISOString() }], total_commits_count: 1,
  })
  const r = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json', 'user-agent': 'GitLab/17.0.0', 'x-gitlab-event': 'Push Hook',
      'x-gitlab-token': token, 'x-gitlab-event-uuid': randomUUID(), 'x-gitlab-instance': 'https://gitlab.example.com',
    },
    body,
  })
  const text = await r.text()
  return { status: r.status, body: text ? JSON.parse(text) : null }
}
/** The deliveries table's rows: outcome and reason. */
async function deliveryRows() {
  return page.locator('[data-test="webhook-deliveries"] .el-table__body tr').evaluateAll((rows) =>
    rows.map((r) => ({
      outcome: r.querySelector('[data-test="delivery-outcome"]')?.getAttribute('data-outcome'),
      reason: r.querySelector('[data-test="delivery-reason"]')?.textContent ?? '',
      release: r.querySelector('[data-test="delivery-release"]')?.textContent ?? '',
    })),
  )
}
async function openWebhook(configId) {
  await nav('/apps')
  await $(`config-webhook-${configId}`).click()
  await $('webhook-dialog').waitFor()
  await page.waitForLoadState('networkidle')
}

const summary = {}
try {
  step('log in')
  await login('admin', ADMIN_PASSWORD)

  // ── The webhook: made in the dialog, its URL and secret shown once.
  step('webhook: create it (GitHub, branch main, run at once)')
  await openWebhook(CONFIG)
  await page.getByText('还没有 Webhook').first().waitFor()
  await shot('01-webhook-new-zh')
  await $('webhook-provider-github').click()
  await $('webhook-rule-branch').click()
  // A pattern the API refuses (a space): the reason shows under the field, nothing is made.
  await input('webhook-pattern').fill('release branch')
  await $('webhook-save').click()
  const patternError = page.locator('[data-test="webhook-dialog"] .el-form-item__error')
  await patternError.first().waitFor()
  check((await patternError.first().textContent()).includes('pattern'), `the pattern's error: ${await patternError.first().textContent()}`)
  check((await $('webhook-shown').count()) === 0, 'a refused webhook showed a secret')
  check((await api('GET', `/api/release-configs/${CONFIG}/webhook`)).status === 404, 'a refused webhook was made')
  await input('webhook-pattern').fill('main')
  await $('webhook-auto-run').click()
  await $('webhook-save').click()
  await $('webhook-shown').waitFor()
  const url = (await $('webhook-url').textContent()).trim()
  const secret = (await $('webhook-secret').textContent()).trim()
  check(url.startsWith(`${BASE}/api/hooks/git/`), `the webhook URL: ${url}`)
  check(secret.length >= 20, `the secret: ${secret}`)
  summary.secret = secret
  await shot('02-webhook-created-zh')

  step('deliveries: another branch, a bad signature, main, main again')
  const other = await githubPush(url, secret, { ref: 'refs/heads/feature', after: GIT.feature })
  check(other.status === 200 && other.body.outcome === 'ignored', `feature push: ${JSON.stringify(other)}`)
  const forged = await githubPush(url, secret, { ref: 'refs/heads/main', after: GIT.main, badSignature: true })
  check(forged.status === 401, `badly signed push: ${JSON.stringify(forged)}`)
  const delivery = randomUUID()
  const good = await githubPush(url, secret, { ref: 'refs/heads/main', after: GIT.main, delivery })
  check(good.status === 200 && good.body.outcome === 'accepted' && good.body.release_id, `main push: ${JSON.stringify(good)}`)
  summary.webhookRelease = good.body.release_id
  const again = await githubPush(url, secret, { ref: 'refs/heads/main', after: GIT.main, delivery })
  check(again.status === 200 && again.body.outcome === 'ignored', `the same delivery again: ${JSON.stringify(again)}`)

  await $('webhook-refresh').click()
  await page.waitForFunction(() => document.querySelectorAll('[data-test="webhook-deliveries"] .el-table__body tr').length === 4)
  const rows = await deliveryRows()
  // Newest first.
  check(rows[0].outcome === 'ignored' && rows[0].reason.includes('already accepted'), `row 1: ${JSON.stringify(rows[0])}`)
  check(rows[1].outcome === 'accepted' && rows[1].release === `#${good.body.release_id}`, `row 2: ${JSON.stringify(rows[1])}`)
  check(rows[2].outcome === 'refused' && rows[2].reason.includes('bad signature'), `row 3: ${JSON.stringify(rows[2])}`)
  check(rows[3].outcome === 'ignored' && rows[3].reason.includes('does not match'), `row 4: ${JSON.stringify(rows[3])}`)
  const tags = await $('webhook-deliveries').locator('[data-test="delivery-outcome"]').allTextContents()
  check(tags.includes('已接受') && tags.includes('已忽略') && tags.includes('已拒绝'), `outcomes in Chinese: ${tags}`)
  await shot('03-webhook-deliveries-zh')

  step('the secret is not shown again')
  await $('webhook-close').click()
  await $(`config-webhook-${CONFIG}`).click()
  await $('webhook-hidden').waitFor()
  check((await $('webhook-shown').count()) === 0, 'the URL and secret are shown again')
  check(!(await page.content()).includes(secret), 'the page holds the secret after the dialog was reopened')

  step('rotate: a new URL and secret; the old URL stops')
  await $('webhook-rotate').click()
  await confirmBox()
  await $('webhook-shown').waitFor()
  const url2 = (await $('webhook-url').textContent()).trim()
  const secret2 = (await $('webhook-secret').textContent()).trim()
  check(url2 !== url && secret2 !== secret, 'rotation made a new URL and secret')
  const old = await githubPush(url, secret, { ref: 'refs/heads/feature', after: GIT.feature })
  check(old.status === 404, `the old URL after rotation: ${JSON.stringify(old)}`)
  const ping = await githubPush(url2, secret2, { event: 'ping' })
  check(ping.status === 200 && ping.body.outcome === 'ignored', `a ping to the new URL: ${JSON.stringify(ping)}`)
  await $('webhook-refresh').click()
  await page.waitForFunction(() => document.querySelectorAll('[data-test="webhook-deliveries"] .el-table__body tr').length === 5)
  check((await deliveryRows())[0].reason.includes('ping'), 'the ping is listed first')

  step('settings change: GitLab, tags v*; the URL and secret stay')
  await $('webhook-provider-gitlab').click()
  await $('webhook-rule-tag').click()
  await input('webhook-pattern').fill('v*')
  await $('webhook-save').click()
  let hookNow
  for (let i = 0; i < 50; i++) {
    hookNow = await api('GET', `/api/release-configs/${CONFIG}/webhook`)
    if (hookNow.body.provider === 'gitlab') break
    await page.waitForTimeout(200)
  }
  check(hookNow.body.provider === 'gitlab' && hookNow.body.rule_kind === 'tag' && hookNow.body.pattern === 'v*', `saved: ${JSON.stringify(hookNow.body)}`)
  check(!hookNow.body.secret && !hookNow.body.path, 'the API showed the secret again')
  // A GitLab branch push (its documented payload), proven by X-Gitlab-Token: ignored, tags only.
  const lab = await gitlabPush(url2, secret2, { ref: 'refs/heads/main', after: GIT.main })
  check(lab.status === 200 && lab.body.outcome === 'ignored' && lab.body.reason.includes('releases tags'), `GitLab branch push: ${JSON.stringify(lab)}`)
  const labBad = await gitlabPush(url2, 'not-the-secret', { ref: 'refs/heads/main', after: GIT.main })
  check(labBad.status === 401, `GitLab push with a wrong token: ${JSON.stringify(labBad)}`)
  await $('webhook-refresh').click()
  await page.waitForFunction(() => document.querySelectorAll('[data-test="webhook-deliveries"] .el-table__body tr').length === 7)

  // ── The accepted push's release ran by itself; its page speaks Chinese.
  step("the webhook's release runs by itself")
  await $('webhook-deliveries').locator('[data-test="delivery-release"]').first().click()
  await page.waitForURL((u) => u.pathname === `/releases/${good.body.release_id}`)
  for (let i = 0; i < 240; i++) {
    const r = await api('GET', `/api/releases/${good.body.release_id}`)
    if (['succeeded', 'failed'].includes(r.body.status)) break
    await page.waitForTimeout(500)
  }
  const done = await api('GET', `/api/releases/${good.body.release_id}`)
  check(done.body.status === 'succeeded', `the webhook's release: ${JSON.stringify(done.body)}`)
  check(done.body.requested_by_name === 'webhook', `requested by: ${done.body.requested_by_name}`)
  await page.reload()
  await page.locator('[data-test="log-line"]').first().waitFor()
  await scrollLogToTop()
  const serverLane = (await $('lane-server').locator('.el-tag').textContent()).trim()
  check(serverLane === '发布', `the release server's lane: ${serverLane}`)
  const logStages = await page.locator('[data-test="log-line"] .stage').allTextContents()
  check(logStages.length > 0 && logStages.every((s) => !RAW_STAGES.includes(s.trim())), `log stages not translated: ${logStages}`)
  check(logStages.some((s) => s.trim() === '检出代码'), `no checkout line: ${logStages}`)
  await page.locator('.el-tabs__item', { hasText: '各主机结果' }).click()
  const resultStages = await $('results').locator('.el-table__body td:nth-child(4)').allTextContents()
  check(resultStages.length === 1 && !RAW_STAGES.includes(resultStages[0].trim()), `results' stage: ${resultStages}`)
  await page.locator('.el-tabs__item', { hasText: '日志' }).click()
  await shot('04-webhook-release-zh')

  // ── The Git server's host key, pinned by that release's fetch, shown and forgotten.
  step('the host key is shown on the config and forgotten by the admin')
  await nav(`/configs/${CONFIG}`)
  const fp = (await $('git-host-key-fingerprint').textContent()).trim()
  check(fp === GIT.fingerprint, `pinned ${fp}, the server's key is ${GIT.fingerprint}`)
  await shot('05-host-key-zh')
  await $('git-host-key-forget').click()
  await confirmBox()
  await $('git-host-key-none').waitFor()
  const gone = await api('GET', `/api/release-configs/${CONFIG}/git/host-key`)
  check(gone.status === 404, `after forgetting: ${JSON.stringify(gone)}`)
  // Listing branches fetches again: the key is pinned anew.
  const branches = await api('GET', `/api/release-configs/${CONFIG}/git/branches`)
  check(branches.status === 200, `branches: ${JSON.stringify(branches)}`)
  await page.reload()
  await $('git-host-key-fingerprint').waitFor()

  // ── Clone prod's config to staging: its host chosen again.
  step('clone to staging')
  await nav('/apps')
  await $(`config-clone-${CONFIG}`).click()
  await $('clone-dialog').waitFor()
  await $('clone-env').click()
  const prodOption = page.locator('.el-select-dropdown__item:visible', { hasText: 'Production' }).first()
  check(await prodOption.evaluate((e) => e.classList.contains('is-disabled')), "prod (the source's place) is offered")
  await page.locator('.el-select-dropdown__item:visible', { hasText: 'Staging' }).first().click()
  check(await $('clone-submit').isDisabled(), 'a clone without hosts can be submitted')
  await $('clone-host-stage-1').click()
  await shot('06-clone-zh')
  await $('clone-submit').click()
  await $('clone-result').waitFor()
  const left = await $('clone-not-copied').locator('li').evaluateAll((l) => l.map((x) => x.getAttribute('data-item')))
  check(JSON.stringify(left) === JSON.stringify(['hosts', 'notice_channels']), `not copied: ${left}`)
  await shot('07-cloned-zh')
  await $('clone-edit-new').click()
  await page.waitForURL((u) => /^\/configs\/\d+$/.test(u.pathname))
  const clone = Number(new URL(page.url()).pathname.split('/').pop())
  check(clone !== CONFIG, 'the new config opened')
  summary.clone = clone
  await page.waitForLoadState('networkidle')
  check(await $('cfg-host-stage-1').locator('input').isChecked(), "the clone's host is chosen")
  check((await $('cfg-repo').inputValue()).startsWith('ssh://'), 'the clone keeps the repository')
  // Review on for staging, saved in the wizard.
  await $('cfg-review').click()
  await $('wizard-next').click()
  await $('wizard-next').click()
  await $('wizard-save').click()
  await page.waitForURL((u) => u.pathname === '/apps')

  // ── A review meets an edit made meanwhile: 409 `changed`, explained, then approved.
  step('review: the release changes under the reviewer')
  const devToken = await tokenOf(GIT.dev.username, GIT.dev.password)
  const asDev = async (method, path, body) => {
    const r = await fetch(`${BASE}${path}`, {
      method,
      headers: { authorization: `Bearer ${devToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    return { status: r.status, body: await r.json() }
  }
  const req = await asDev('POST', '/api/releases', { config_id: clone, name: 'staging try', branch: 'main' })
  check(req.status === 201 && req.body.status === 'pending_review', `dev's request: ${JSON.stringify(req)}`)
  summary.reviewed = req.body.id
  // (A release page's event stream stays open until the release ends: no `networkidle` here.)
  await page.goto(`${BASE}/releases/${req.body.id}`)
  await $('page-review').click()
  await $('review-approve').waitFor()
  await page.getByText(GIT.main.slice(0, 8)).first().waitFor()
  const edited = await asDev('PUT', `/api/releases/${req.body.id}`, { branch: 'feature' })
  check(edited.status === 200 && edited.body.commit_id === GIT.feature, `dev's edit: ${JSON.stringify(edited)}`)
  await $('review-approve').click()
  await page.locator('[data-test="review-error"]', { hasText: '审核期间该申请被修改了' }).waitFor()
  // The dialog looked again: it shows the new commit now, and approving that works.
  await $('review-dialog').getByText(GIT.feature.slice(0, 8)).first().waitFor()
  await shot('08-review-changed-zh')
  await $('review-approve').click()
  await $('review-dialog').waitFor({ state: 'hidden' })
  const approved = await api('GET', `/api/releases/${req.body.id}`)
  check(approved.body.status === 'approved' && approved.body.commit_id === GIT.feature, `after the second look: ${JSON.stringify(approved.body)}`)

  // ── English.
  step('English')
  await $('locale-en').click()
  await openWebhook(CONFIG)
  await $('webhook-hidden').waitFor()
  await page.getByText('Last deliveries').first().waitFor()
  // The deliveries load after the dialog opens: wait for the rows, not only the heading.
  await $('webhook-deliveries').locator('[data-test="delivery-outcome"]', { hasText: 'Refused' }).first().waitFor()
  const tagsEn = await $('webhook-deliveries').locator('[data-test="delivery-outcome"]').allTextContents()
  check(tagsEn.includes('Accepted') && tagsEn.includes('Refused'), `outcomes in English: ${tagsEn}`)
  await shot('10-webhook-en')
  await $('webhook-close').click()
  await $(`config-clone-${clone}`).click()
  await $('clone-dialog').waitFor()
  await choose('clone-env', 'QA')
  await page.getByText('This environment has no hosts yet.').first().waitFor()
  await shot('11-clone-en')
  await $('clone-cancel').click()
  await $('clone-dialog').waitFor({ state: 'hidden' })
  // The config rows' headers fit at 1440 px with the added buttons.
  const cutApps = await page.locator('[data-test="apps-table"] th .cell').evaluateAll((cells) =>
    cells.filter((c) => c.scrollWidth > c.clientWidth).map((c) => c.textContent),
  )
  check(cutApps.length === 0, `apps headers cut off in English: ${cutApps}`)
  // …and a config's buttons stay on one line.
  const rowHeights = await page.locator('[data-test="apps-table"] .el-table__body .el-table__body tr').evaluateAll((rows) => rows.map((r) => r.getBoundingClientRect().height))
  check(rowHeights.length === 2 && rowHeights.every((h) => h < 50), `config rows wrap: ${rowHeights}`)
  await shot('12-apps-en')
  await nav(`/configs/${CONFIG}`)
  await $('git-host-key-fingerprint').waitFor()
  await shot('13-host-key-en')
  await nav(`/releases/${good.body.release_id}`)
  await page.locator('[data-test="log-line"]').first().waitFor()
  await scrollLogToTop()
  const stagesEn = await page.locator('[data-test="log-line"] .stage').allTextContents()
  check(stagesEn.some((s) => s.trim() === 'Checkout'), `English log stages: ${stagesEn}`)
  await shot('14-release-en')
  // The hosts page's headers fit at 1440 px (none cut off with an ellipsis).
  await nav('/hosts')
  await $('hosts-table').waitFor()
  const cut = await page.locator('[data-test="hosts-table"] th .cell').evaluateAll((cells) =>
    cells.filter((c) => c.scrollWidth > c.clientWidth).map((c) => c.textContent),
  )
  check(cut.length === 0, `hosts headers cut off in English: ${cut}`)
  await shot('15-hosts-en')

  // ── A developer: sees the webhook and the key, changes neither.
  step('a developer sees but cannot change')
  const adminPage = page
  page = await newPage()
  await login(GIT.dev.username, GIT.dev.password)
  await openWebhook(CONFIG)
  await $('webhook-read-only').waitFor()
  check((await $('webhook-save').count()) === 0 && (await $('webhook-rotate').count()) === 0, 'the developer has webhook buttons')
  await page.waitForFunction(() => document.querySelectorAll('[data-test="webhook-deliveries"] .el-table__body tr').length === 7)
  await shot('20-webhook-dev-zh')
  await $('webhook-close').click()
  check((await $(`config-edit-${CONFIG}`).count()) === 0, "the developer may edit prod's config")
  await nav(`/configs/${clone}`)
  await $('git-host-key-fingerprint').waitFor()
  check((await $('git-host-key-forget').count()) === 0, 'a developer is offered to forget the host key')
  await shot('21-host-key-dev-zh')

  step('the admin removes the webhook: its URL stops')
  page = adminPage
  await openWebhook(CONFIG)
  await $('webhook-remove').click()
  await confirmBox()
  await page.getByText('No webhook yet').first().waitFor()
  check((await $('webhook-deliveries').count()) === 0, 'the deliveries are still listed')
  const removed = await githubPush(url2, secret2, { ref: 'refs/heads/main', after: GIT.main })
  check(removed.status === 404, `the removed webhook's URL: ${JSON.stringify(removed)}`)

  if (consoleErrors.length) throw new Error(`errors in the page:\n${consoleErrors.join('\n')}`)
  console.log(JSON.stringify({ ok: true, ...summary }))
} catch (e) {
  await shot('zz-failure').catch(() => {})
  console.error(`[git] FAILED at ${page.url()}: ${e.stack ?? e}`)
  process.exitCode = 1
} finally {
  await browser.close()
}
