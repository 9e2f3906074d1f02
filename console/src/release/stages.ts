// A release stage's name in the chosen language (checkout → 检出代码); a stage this version
// does not know is shown as the server names it.
import { i18n } from '@/i18n'

export function stageName(stage: string): string {
  const key = `release.stageName.${stage}`
  return stage && i18n.global.te(key) ? i18n.global.t(key) : stage
}
