import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import VirtualLog from './VirtualLog.vue'
import { ReleaseFeed, type Event } from '@/release/feed'

describe('a 200-host release with 10,000 log lines', () => {
  it('keeps one lane per host and every line once, and renders only the visible lines', async () => {
    const hosts = Array.from({ length: 200 }, (_, i) => `web-${i + 1}`)
    const feed = new ReleaseFeed(hosts)
    let id = 0
    const ev = (stage: string, status: string, host: string, message = ''): Event => ({
      id: ++id, release_id: 1, at: '2026-11-30T10:00:00.000Z', stage: stage as Event['stage'], status: status as Event['status'], host, message,
    })
    for (const h of hosts) feed.apply(ev('prepare', 'started', h))
    for (let i = 0; i < 10_000 - 600; i++) feed.apply(ev('prepare', 'output', hosts[i % 200]!, `line ${i}`))
    for (const h of hosts) feed.apply(ev('prepare', 'succeeded', h))
    for (const h of hosts) feed.apply(ev('switch', 'succeeded', h))
    // A reconnect replays what was already seen: nothing doubles.
    const last = id
    for (let replay = last - 500; replay <= last; replay++) feed.apply({ ...ev('prepare', 'output', 'web-1', 'dup'), id: replay })
    expect(feed.hostLanes()).toHaveLength(200)
    expect(feed.lines).toHaveLength(10_000)
    expect(feed.prepared.size).toBe(200)
    expect(feed.switched.size).toBe(200)

    const w = mount(VirtualLog, { props: { lines: feed.lines, version: 1, showHost: true, follow: false }, attachTo: document.body })
    const rendered = w.findAll('[data-test="log-line"]').length
    expect(rendered).toBeGreaterThan(0)
    expect(rendered).toBeLessThan(100)
    w.unmount()
  })
})

describe('a short live log', () => {
  it('shows every line as lines arrive, though nothing scrolls', async () => {
    const feed = new ReleaseFeed(['web-1'])
    let id = 0
    const ev = (message: string): Event => ({
      id: ++id, release_id: 1, at: '2026-11-30T10:00:00.000Z', stage: 'prepare', status: 'output', host: 'web-1', message,
    })
    feed.apply(ev('first'))
    feed.apply(ev('second'))
    const w = mount(VirtualLog, { props: { lines: feed.lines, version: 1, showHost: true, follow: true }, attachTo: document.body })
    expect(w.findAll('[data-test="log-line"]')).toHaveLength(2)
    for (let i = 0; i < 19; i++) feed.apply(ev(`more ${i}`))
    await w.setProps({ version: 2 })
    expect(w.findAll('[data-test="log-line"]')).toHaveLength(21)
    w.unmount()
  })
})
