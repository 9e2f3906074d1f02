import { describe, expect, it } from 'vitest'
import { i18n } from '@/i18n'
import { stageName } from './stages'

describe('stage names', () => {
  it('are shown in the chosen language, unknown ones as the server names them', () => {
    i18n.global.locale.value = 'zh-CN'
    expect(['checkout', 'package', 'prepare', 'switch', 'cleanup', 'notify', 'release'].map(stageName)).toEqual([
      '检出代码', '打包', '准备', '切换', '清理', '通知', '发布',
    ])
    expect(stageName('build-assets')).toBe('build-assets')
    expect(stageName('')).toBe('')
    i18n.global.locale.value = 'en'
    expect(stageName('checkout')).toBe('Checkout')
  })
})
