// A release stage's name in the chosen language (checkout → 检出代码); a stage this version
// does not know is shown as the server names it.
import { i18n } from '@/i18n'

export function stageName(stage: string): string {
  const key = `release.stageName.${stage}`
  return stage && i18n.global.te(key) ? i18n.global.t(key) : stage
}

// A log line's text: the event's own message, or for an event without one its status in the
// chosen language (prepare + succeeded → 准备 成功; the stage has its own column).
export function lineText(line: { text: string; status: string }): string {
  if (line.text) return line.text
  const key = `release.eventStatus.${line.status}`
  return i18n.global.te(key) ? i18n.global.t(key) : line.status
}
