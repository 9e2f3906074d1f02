// Field errors from the API (422 with `field`) shown next to their field.
import { reactive } from 'vue'
import { ApiError } from '@/api/client'
import { showError } from '@/ui'

export function useFieldErrors() {
  const errors = reactive<Record<string, string>>({})
  function clear() {
    for (const k of Object.keys(errors)) delete errors[k]
  }
  /** Puts a field error next to its field; anything else is shown as a message. Returns the field. */
  function take(e: unknown): string | null {
    clear()
    if (e instanceof ApiError && e.field) {
      // `hooks.after_release`, `notice_channels[0].secret` → the form's key is the first part.
      errors[e.field] = e.message
      const base = e.field.split(/[.[]/)[0] ?? e.field
      if (base !== e.field) errors[base] = e.message
      return e.field
    }
    showError(e)
    return null
  }
  return { errors, clear, take }
}
