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
