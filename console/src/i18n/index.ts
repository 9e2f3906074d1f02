import { createI18n } from 'vue-i18n'
import en from './en'
import zhCN from './zh-CN'

export type Locale = 'zh-CN' | 'en'
export const LOCALES: Locale[] = ['zh-CN', 'en']
const KEY = 'hippo.locale'

/** The remembered choice, else the browser's language (Chinese first), else zh-CN. */
export function initialLocale(): Locale {
  const saved = localStorage.getItem(KEY)
  if (saved === 'zh-CN' || saved === 'en') return saved
  const nav = typeof navigator !== 'undefined' ? navigator.language : ''
  return nav && !nav.toLowerCase().startsWith('zh') ? 'en' : 'zh-CN'
}

const start = initialLocale()
if (typeof document !== 'undefined') document.documentElement.lang = start

export const i18n = createI18n({
  legacy: false,
  locale: start,
  fallbackLocale: 'en',
  messages: { 'zh-CN': zhCN, en },
})

export function setLocale(l: Locale): void {
  i18n.global.locale.value = l
  localStorage.setItem(KEY, l)
  document.documentElement.lang = l
  onLocaleChange?.()
}

let onLocaleChange: (() => void) | undefined
/** Called after every language switch (main.ts: the tab's title). */
export function whenLocaleChanges(f: () => void): void {
  onLocaleChange = f
}
