import { describe, expect, it } from 'vitest'
import { ReleaseFeed, SERVER, type Event } from './feed'

let id = 0
const ev = (stage: string, status: string, host?: string, extra: Partial<Event> = {}): Event => ({
  id: ++id, release_id: 1, at: '2026-11-30T10:00:00Z', stage: stage as Event['stage'], status: status as Event['status'], host, message: extra.message ?? '', ...extra,
})

describe('a release feed', () => {
  it('counts wave events and ends on a cancelled release with its reason', () => {
    const f = new ReleaseFeed(['web-1', 'web-2'])
    f.apply(ev('release', 'started'))
    f.apply(ev('wave', 'started', undefined, { message: 'wave 1 of 2: web-1' }))
    f.apply(ev('switch', 'succeeded', 'web-1'))
    f.apply(ev('health', 'succeeded', 'web-1'))
    f.apply(ev('wave', 'info', undefined, { message: 'paused after wave 1' }))
    expect(f.waveEvents).toBe(2)
    expect(f.ended).toBe(false)
    f.apply(ev('wave', 'succeeded', 'web-1', { message: 'web-1: rolled back to v1' }))
    f.apply(ev('release', 'cancelled', undefined, { message: "cancelled by the pause's time-out" }))
    expect(f.waveEvents).toBe(2)
    expect(f.ended).toBe(true)
    expect(f.endStatus).toBe('cancelled')
    expect(f.lanes.get(SERVER)).toMatchObject({ state: 'error', message: "cancelled by the pause's time-out" })
  })

  it('follows the server stages, one lane per host, and the prepared/switched counts', () => {
    const f = new ReleaseFeed(['web-1', 'web-2'])
    f.apply(ev('release', 'started'))
    f.apply(ev('checkout', 'started'))
    f.apply(ev('checkout', 'succeeded'))
    f.apply(ev('package', 'succeeded'))
    f.apply(ev('prepare', 'started', 'web-1'))
    f.apply(ev('prepare', 'output', 'web-1', { message: 'hook says hi\nsecond line' }))
    f.apply(ev('prepare', 'succeeded', 'web-1', { bytes_sent: 2048 }))
    f.apply(ev('prepare', 'failed', 'web-2', { message: 'connection refused' }))
    f.apply(ev('release', 'failed', undefined, { message: 'web-2 failed' }))
    expect(f.server).toEqual({ release: 'error', checkout: 'success', package: 'success' })
    expect([...f.prepared]).toEqual(['web-1'])
    expect([...f.failed]).toEqual(['web-2'])
    expect(f.lanes.get('web-1')).toMatchObject({ stage: 'prepare', state: 'success', bytes: 2048 })
    expect(f.lanes.get('web-2')).toMatchObject({ state: 'error', message: 'connection refused' })
    expect(f.byLane.get('web-1')?.map((n) => f.lines[n]?.text)).toContain('second line')
    expect(f.ended).toBe(true)
    expect(f.endStatus).toBe('failed')
    expect(f.lanes.get(SERVER)).toMatchObject({ stage: 'release', state: 'error', message: 'web-2 failed' })
  })

  it('never applies the same event twice', () => {
    const f = new ReleaseFeed()
    const e = ev('prepare', 'output', 'web-1', { message: 'once' })
    expect(f.apply(e)).toBe(true)
    expect(f.apply(e)).toBe(false)
    expect(f.lines.filter((l) => l.text === 'once')).toHaveLength(1)
  })

  it('ends on a cancelled release event, with the reason on the server lane', () => {
    const f = new ReleaseFeed(['web-1'])
    f.apply(ev('release', 'started'))
    f.apply(ev('prepare', 'started', 'web-1'))
    f.apply(ev('release', 'cancelled', undefined, { message: 'cancelled by ann' }))
    expect(f.ended).toBe(true)
    expect(f.endStatus).toBe('cancelled')
    expect(f.server.release).toBe('error')
    expect(f.lanes.get(SERVER)).toMatchObject({ state: 'error', message: 'cancelled by ann' })
  })
})
