import { describe, expect, it } from 'vitest'
import { i18n } from '@/i18n'
import { lineText, stageName } from './stages'

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

describe('log lines', () => {
  it('show an event’s own message as it is, and one without a message as its status in the chosen language', () => {
    i18n.global.locale.value = 'zh-CN'
    expect(lineText({ text: 'delta: 1 files, 12 bytes', status: 'succeeded' })).toBe('delta: 1 files, 12 bytes')
    expect(['started', 'succeeded', 'failed', 'cancelled'].map((status) => lineText({ text: '', status }))).toEqual([
      '开始', '成功', '失败', '已取消',
    ])
    expect(lineText({ text: '', status: 'someday' })).toBe('someday')
    i18n.global.locale.value = 'en'
    expect(lineText({ text: '', status: 'succeeded' })).toBe('succeeded')
  })
})
