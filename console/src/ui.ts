// Small helpers every page uses: error messages, confirmations, copying, formatting.
import { ElMessage, ElMessageBox } from 'element-plus'
import 'element-plus/es/components/message/style/css'
import 'element-plus/es/components/message-box/style/css'
import { ApiError } from '@/api/client'
import { i18n } from '@/i18n'

const t = (k: string, v?: Record<string, unknown>) => i18n.global.t(k, v ?? {})

/** The API's own sentence for a failure (it names the field or the permission). */
export function errorText(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 0) return t('common.networkError', { message: e.message })
    if (e.status === 403 && e.problem.permission && e.problem.permission !== 'any') {
      return `${t('common.forbidden', { permission: e.problem.permission })} ${e.message}`
    }
    return e.message
  }
  return e instanceof Error ? e.message : String(e)
}

export function showError(e: unknown): void {
  // 401 is handled once, by the client (back to the login page).
  if (e instanceof ApiError && e.status === 401) return
  ElMessage({ type: 'error', message: errorText(e), showClose: true, duration: 6000 })
}

export function toast(message: string): void {
  ElMessage({ type: 'success', message })
}

/** Resolves true when the user confirms. */
export async function confirm(message: string, danger = true): Promise<boolean> {
  try {
    await ElMessageBox.confirm(message, t('common.confirm'), {
      type: danger ? 'warning' : 'info',
      confirmButtonText: t('common.confirm'),
      cancelButtonText: t('common.cancel'),
    })
    return true
  } catch {
    return false
  }
}

/** Copies text; works on plain-HTTP pages too (where navigator.clipboard is missing). */
export async function copyText(text: string): Promise<void> {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text)
    } else {
      const ta = document.createElement('textarea')
      ta.value = text
      ta.style.position = 'fixed'
      ta.style.opacity = '0'
      document.body.appendChild(ta)
      ta.select()
      document.execCommand('copy')
      ta.remove()
    }
    toast(t('common.copied'))
  } catch (e) {
    showError(e)
  }
}

export function download(name: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/plain;charset=utf-8' }))
  const a = document.createElement('a')
  a.href = url
  a.download = name
  a.click()
  setTimeout(() => URL.revokeObjectURL(url), 1000)
}

const pad = (n: number) => String(n).padStart(2, '0')

/** Local time, `2026-11-30 21:05:03`. */
export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return ''
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

/** `fmtTime` of a Unix time in seconds (Git commits). */
export function fmtUnix(secs: number): string {
  return fmtTime(new Date(secs * 1000).toISOString())
}

export function duration(from: string | null | undefined, to: string | null | undefined): string {
  if (!from) return ''
  const ms = (to ? Date.parse(to) : Date.now()) - Date.parse(from)
  if (!Number.isFinite(ms) || ms < 0) return ''
  const s = Math.round(ms / 1000)
  if (s < 60) return t('common.seconds', { n: s })
  return t('common.minutes', { m: Math.floor(s / 60), s: s % 60 })
}

export function bytes(n: number | null | undefined): string {
  const v = n ?? 0
  if (v < 1024) return `${v} B`
  if (v < 1024 * 1024) return `${(v / 1024).toFixed(1)} KB`
  if (v < 1024 ** 3) return `${(v / 1024 / 1024).toFixed(1)} MB`
  return `${(v / 1024 ** 3).toFixed(2)} GB`
}

export const short = (sha: string | null | undefined) => (sha ?? '').slice(0, 8)

/** Element Plus tag type per release status. */
export function statusType(s: string): 'primary' | 'success' | 'warning' | 'danger' | 'info' {
  switch (s) {
    case 'succeeded':
      return 'success'
    case 'failed':
      return 'danger'
    case 'pending_review':
      return 'warning'
    case 'running':
    case 'queued':
    case 'approved':
      return 'primary'
    default:
      return 'info'
  }
}
