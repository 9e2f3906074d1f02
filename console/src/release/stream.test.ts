// The release page's whole pipeline, at the size the issue names: a 200-host release whose
// 10,000 log lines arrive over SSE, with the connection dropped twice mid-event. The reader
// resumes with Last-Event-ID, the feed applies every event once, and the log ends with exactly
// the lines that were sent, in order.
import { describe, expect, it } from 'vitest'
import { followEvents } from '@/api/sse'
import { ReleaseFeed, type Event } from './feed'

const enc = new TextEncoder()
const HOSTS = Array.from({ length: 200 }, (_, i) => `web-${i + 1}`)

/** The release's events as the server stores them. */
function releaseEvents(): Event[] {
  const out: Event[] = []
  const add = (stage: string, status: string, host?: string, message = '') =>
    out.push({ id: 1000 + out.length, release_id: 7, at: '2026-12-01T02:00:00.000Z', stage: stage as Event['stage'], status: status as Event['status'], host, message })
  add('release', 'started')
  add('checkout', 'succeeded')
  add('package', 'succeeded')
  for (const h of HOSTS) add('prepare', 'started', h)
  // 10,000 lines in all (one per event): 9,396 hook output lines spread over the hosts, 604 stage events.
  for (let i = 0; i < 10_000 - 604; i++) add('prepare', 'output', HOSTS[i % 200], `hook line ${i}`)
  for (const h of HOSTS) add('prepare', 'succeeded', h)
  for (const h of HOSTS) add('switch', 'succeeded', h)
  add('release', 'succeeded')
  return out
}

const frame = (e: Event) => `id: ${e.id}\nevent: ${e.stage === 'release' && e.status === 'succeeded' ? 'end' : 'stage'}\ndata: ${JSON.stringify(e)}\n\n`

/**
 * A server that sends every event after Last-Event-ID in chunks of 37 events, and drops the
 * connection in the middle of an event at the given events (once each).
 */
function server(events: Event[], dropAt: number[]) {
  const drops = new Set(dropAt)
  const asked: (string | null)[] = []
  const fetch = async (_url: string, init: RequestInit) => {
    const last = (init.headers as Record<string, string>)['Last-Event-ID'] ?? null
    asked.push(last)
    const from = last === null ? 0 : events.findIndex((e) => e.id > Number(last))
    const rest = events.slice(from)
    let i = 0
    let broken = false
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        // The failure comes on the read after the half event (erroring at once would drop it).
        if (broken) return c.error(new TypeError('network error'))
        if (i >= rest.length) return c.close()
        let chunk = ''
        for (const end = Math.min(i + 37, rest.length); i < end; i++) {
          const e = rest[i]!
          if (drops.delete(e.id)) {
            const f = frame(e)
            c.enqueue(enc.encode(chunk + f.slice(0, f.length / 2)))
            broken = true
            return
          }
          chunk += frame(e)
        }
        c.enqueue(enc.encode(chunk))
      },
    })
    return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } })
  }
  return { fetch, asked }
}

describe('a 200-host release with 10,000 log lines over a connection that drops twice', () => {
  it('resumes with Last-Event-ID and ends with every line once, in order, quickly', async () => {
    const events = releaseEvents()
    const dropAt = [events[3000]!.id, events[7777]!.id]
    const srv = server(events, dropAt)
    const feed = new ReleaseFeed(HOSTS)
    const states: string[] = []
    let applied = 0
    const started = performance.now()
    await followEvents({
      url: '/api/releases/7/events',
      token: () => 'tok',
      endType: 'end',
      retryMs: 1,
      onState: (s) => states.push(s),
      onMessage: (m) => {
        if (feed.apply(JSON.parse(m.data) as Event)) applied++
      },
      fetch: srv.fetch as never,
    })
    const ms = performance.now() - started

    // Three connections: the first, then one after each drop, resuming after the last whole event.
    expect(srv.asked).toEqual([null, String(dropAt[0]! - 1), String(dropAt[1]! - 1)])
    expect(states.filter((s) => s === 'retrying')).toHaveLength(2)
    expect(applied).toBe(events.length)
    expect(feed.lines).toHaveLength(10_000)
    expect(feed.lines.map((l) => l.eventId)).toEqual(events.map((e) => e.id))
    const hookLines = feed.lines.filter((l) => l.status === 'output').map((l) => l.text)
    expect(new Set(hookLines).size).toBe(hookLines.length)
    expect(feed.hostLanes()).toHaveLength(200)
    expect(feed.prepared.size).toBe(200)
    expect(feed.switched.size).toBe(200)
    expect(feed.ended && feed.endStatus).toBe('succeeded')
    // Parsing and applying 10,000 events takes well under a second on the test machine.
    expect(ms).toBeLessThan(3000)
    console.log(`10,000 events over 3 connections parsed and applied in ${ms.toFixed(0)} ms`)
  })
})
