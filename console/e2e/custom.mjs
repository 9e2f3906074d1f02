// The custom release editor and a file upload, told in Chromium (Debian's /usr/bin/chromium
// driven by playwright-core) against a real hippo-api and a real sshd host, started by
// tests/tests/console_custom_story.rs, which passes in:
//
//   HIPPO_URL, HIPPO_ADMIN_PASSWORD, HIPPO_ARTIFACTS (screenshots go there),
//   HIPPO_CUSTOM ({app, env, repo, file}: the lab's ids, the repository, a file to upload)
//
// The admin makes a custom config in the wizard: adds steps out of order and moves them
// (build on the server first, then a transfer of dist/, then the uploaded file, then a restart
// on the hosts), adds a step and removes it, sees the API's refusal of an empty destination next
// to that step, saves; then requests a release on the new-release page, choosing the file for
// the upload step (the request cannot be sent without it). Both languages are photographed.
// The last line printed is a JSON summary ({release}) the Rust test checks further.
import { join } from 'node:path'
import { artifacts, check, launch, must, newPage, on, stepper } from './lib.mjs'

const BASE = must('HIPPO_URL').replace(/\/$/, '')
const ADMIN_PASSWORD = must('HIPPO_ADMIN_PASSWORD')
const ART = artifacts()
const LAB = JSON.parse(must('HIPPO_CUSTOM'))
const step = stepper('custom')

const browser = await launch()
const consoleErrors = []
const page = await newPage(browser, consoleErrors)
const { $, input, fill, expectText, nav, login, newRelease, shot } = on(() => page, { base: BASE, dir: ART, prefix: 'custom' })
/** The step types shown in the editor, in order (the English names). */
async function stepTypes() {
  return page.locator('[data-test="action-editor"] .action strong').allTextContents()
}

let summary = {}
try {
  step('log in')
  await login('admin', ADMIN_PASSWORD)

  step('a custom config in the wizard')
  await nav(`/configs/new?app=${LAB.app}&env=${LAB.env}`)
  await $('cfg-host-web-1').click()
  await fill('cfg-repo', LAB.repo)
  await $('cfg-kind').getByText('自定义发布').click()
  await expectText('自己编排步骤')
  await $('wizard-next').click()
  await $('step-build').waitFor()
  await $('wizard-next').click()
  await $('step-deploy').waitFor()
  await fill('cfg-deploy-path', '/srv/www/app')
  await fill('cfg-versions-path', '/srv/hippo/versions')
  check((await $('cfg-before-release').count()) === 0, 'a custom config shows no before-release hook')

  // Added out of order, then moved into place.
  await $('action-add-target').click()
  await fill('action-script-0', 'echo "restarted $(cat /srv/app/static/commit.txt)" >> /srv/app/restarts.log\n')
  await $('action-add-server').click()
  await fill('action-script-1', 'mkdir -p dist\necho "$HIPPO_COMMIT" > dist/commit.txt\n')
  await $('action-up-1').click()
  await $('action-add-transfer').click()
  await fill('action-path-2', 'dist/')
  await fill('action-destination-2', '/srv/app/static')
  await $('action-up-2').click()
  await $('action-add-transfer').click()
  await $('action-source-3').getByText('随发布申请上传的文件').click()
  check((await input('action-path-3').count()) === 0, 'an upload transfer asks for no path')
  await $('action-up-3').click()
  // One step too many: added, then removed.
  await $('action-add-target').click()
  await fill('action-script-4', 'echo never\n')
  await $('action-remove-4').click()
  check((await $('action-4').count()) === 0, 'the removed step is gone')
  check(
    JSON.stringify(await stepTypes()) === JSON.stringify(['发布服务器执行命令', '传输文件', '传输文件', '目标主机执行命令']),
    `steps in order: ${await stepTypes()}`,
  )
  // The upload step has no destination yet: the API's refusal is shown on that step.
  await $('wizard-save').click()
  const err = page.locator('[data-test="action-2"] .el-form-item__error').first()
  await err.waitFor()
  check(/actions\[2\]\.destination/.test((await err.textContent()) ?? ''), 'the error names actions[2].destination')
  await shot('01-steps-error-zh')
  await fill('action-destination-2', '/srv/app/bin/app.bin')

  await $('locale-en').click()
  await expectText('Command on the release server')
  await shot('02-steps-en')
  await $('wizard-save').click()
  await page.waitForURL(/\/apps$/)

  step('a release with its file')
  await newRelease('Production', 'Cart')
  await $('nr-files').waitFor()
  await expectText('Step 3 → /srv/app/bin/app.bin')
  await fill('nr-name', 'custom from the browser')
  check(await $('nr-submit').isDisabled(), 'the request cannot be sent without its file')
  await page.locator('input[data-test="nr-file-3"]').setInputFiles(LAB.file)
  check(!(await $('nr-submit').isDisabled()), 'with its file the request can be sent')
  await shot('03-new-release-en')
  await $('locale-zh').click()
  await expectText('第 3 步 → /srv/app/bin/app.bin')
  await shot('04-new-release-zh')
  await $('nr-submit').click()
  await page.waitForURL(/\/releases\/\d+$/)
  summary.release = Number(page.url().split('/').pop())
  check(consoleErrors.length === 0, `errors in the page: ${consoleErrors.join('; ')}`)
} catch (e) {
  await page.screenshot({ path: join(ART, 'custom-failure.png'), fullPage: true }).catch(() => {})
  console.error(e)
  await browser.close()
  process.exit(1)
}
await browser.close()
console.log(JSON.stringify(summary))
