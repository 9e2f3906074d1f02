// The generated client types must match the committed spec, like the spec's own drift test:
// an API change that is not regenerated (`npm run gen:api`) fails here.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

describe('the generated API types', () => {
  it('are up to date with openapi/openapi.json (run `npm run gen:api`)', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'hippo-schema-')), 'schema.d.ts')
    execFileSync(process.execPath, ['node_modules/openapi-typescript/bin/cli.js', '../openapi/openapi.json', '-o', out], { stdio: 'pipe' })
    expect(readFileSync('src/api/schema.d.ts', 'utf8')).toBe(readFileSync(out, 'utf8'))
  }, 60_000)
})
