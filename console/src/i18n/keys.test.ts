import { describe, expect, it } from 'vitest'
import en from './en'
import zhCN from './zh-CN'

function keys(o: unknown, prefix = ''): string[] {
  if (typeof o !== 'object' || o === null) return [prefix]
  return Object.entries(o).flatMap(([k, v]) => keys(v, prefix ? `${prefix}.${k}` : k)).sort()
}

function placeholders(s: string): string[] {
  return [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1] ?? '').sort()
}

describe('message files', () => {
  it('zh-CN and English have exactly the same keys', () => {
    expect(keys(zhCN)).toEqual(keys(en))
  })

  it('every message is translated with the same placeholders', () => {
    const get = (o: unknown, path: string) =>
      path.split('.').reduce<unknown>((x, k) => (x as Record<string, unknown>)[k], o) as string
    for (const k of keys(en)) {
      const zh = get(zhCN, k)
      expect(zh, k).not.toBe('')
      expect(placeholders(zh), k).toEqual(placeholders(get(en, k)))
    }
  })
})

describe('every message', () => {
  it('compiles in both languages (vue-i18n syntax: `@`, `|`, braces need escaping)', async () => {
    const { createI18n } = await import('vue-i18n')
    for (const [locale, messages] of [['en', en], ['zh-CN', zhCN]] as const) {
      const errors: string[] = []
      const i18n = createI18n({ legacy: false, locale, messages: { [locale]: messages }, warnHtmlMessage: false, missingWarn: false, fallbackWarn: false })
      for (const k of keys(messages)) {
        try {
          const out = i18n.global.t(k, { n: 1, m: 1, s: 1, id: 1, name: 'x', what: 'x', permission: 'p', message: 'm', size: '1 B', done: 1, total: 2, version: 'v', app: 'a', env: 'e' })
          if (out === k) errors.push(`${locale} ${k}: not translated`)
        } catch (e) {
          errors.push(`${locale} ${k}: ${String(e)}`)
        }
      }
      expect(errors).toEqual([])
    }
  })
})
