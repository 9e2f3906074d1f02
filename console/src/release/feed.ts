// The live model of one release, fed by its events: a lane per host (stage, status, bytes
// sent), the release server's stages, prepared/switched counts, and the log lines. It is kept
// out of Vue's reactivity (a 200-host release sends thousands of events); `version` is bumped
// at most once per animation frame so the page re-renders in batches.
import { shallowRef, triggerRef } from 'vue'
import type { Schemas } from '@/api'

export type Event = Schemas['EventOut']
export type StepState = 'wait' | 'process' | 'success' | 'error'

export interface Lane {
  /** The host's name; '' is the release server. */
  host: string
  stage: string
  state: StepState
  bytes: number
  message: string
  lines: number
}

export interface LogLine {
  /** Index in the whole log (stable key). */
  n: number
  eventId: number
  at: string
  host: string
  stage: string
  status: string
  text: string
}

export const SERVER = ''

export class ReleaseFeed {
  readonly lanes = new Map<string, Lane>()
  readonly lines: LogLine[] = []
  /** Line indexes per lane, for the selected lane's log. */
  readonly byLane = new Map<string, number[]>()
  readonly server: Record<'release' | 'checkout' | 'package', StepState> = { release: 'wait', checkout: 'wait', package: 'wait' }
  prepared = new Set<string>()
  switched = new Set<string>()
  failed = new Set<string>()
  lastEventId: number | null = null
  ended = false
  endStatus: 'succeeded' | 'failed' | 'cancelled' | null = null
  /** Events of the `wave` stage seen (a wave started, ended, paused, continued): the page re-reads the release on each. */
  waveEvents = 0

  constructor(hosts: string[] = []) {
    this.lane(SERVER)
    for (const h of hosts) this.lane(h)
  }

  lane(host: string): Lane {
    let l = this.lanes.get(host)
    if (!l) {
      l = { host, stage: '', state: 'wait', bytes: 0, message: '', lines: 0 }
      this.lanes.set(host, l)
      this.byLane.set(host, [])
    }
    return l
  }

  /**
   * Applies one event; false if it was already applied. The server sends a release's events in
   * increasing id order (and resumes after Last-Event-ID), so one seen id is not newer than the last.
   */
  apply(e: Event): boolean {
    if (this.lastEventId !== null && e.id <= this.lastEventId) return false
    this.lastEventId = e.id
    const host = e.host ?? SERVER
    const lane = this.lane(host)
    const state: StepState | null =
      e.status === 'started' ? 'process' : e.status === 'succeeded' ? 'success' : e.status === 'failed' ? 'error' : null

    if (e.stage === 'release') {
      if (e.status === 'started') {
        // A re-run starts over: lanes and counts describe the newest run.
        this.ended = false
        this.endStatus = null
        this.prepared.clear()
        this.switched.clear()
        this.failed.clear()
        for (const l of this.lanes.values()) Object.assign(l, { stage: '', state: 'wait', bytes: 0, message: '' })
        this.server.checkout = 'wait'
        this.server.package = 'wait'
      }
      if (state) this.server.release = state
      if (e.status === 'succeeded' || e.status === 'failed' || e.status === 'cancelled') {
        this.ended = true
        this.endStatus = e.status
        if (e.status === 'cancelled') this.server.release = 'error'
        // The release server's lane ends with the release.
        Object.assign(this.lane(SERVER), { stage: 'release', state: e.status === 'succeeded' ? 'success' : 'error' })
        if (e.status !== 'succeeded') this.lane(SERVER).message = e.message
      }
    } else if (host === SERVER && (e.stage === 'checkout' || e.stage === 'package') && state) {
      this.server[e.stage] = state
    }
    if (host !== SERVER || e.stage !== 'release') {
      if (state || !lane.stage) {
        lane.stage = e.stage
        if (state) lane.state = state
      }
      if (e.status === 'failed') lane.message = e.message
    }
    if (e.stage === 'wave' && host === SERVER) this.waveEvents += 1
    if (e.bytes_sent != null) lane.bytes = Math.max(lane.bytes, e.bytes_sent)
    if (host !== SERVER) {
      if (e.stage === 'prepare' && e.status === 'succeeded') this.prepared.add(host)
      if (e.stage === 'switch' && e.status === 'succeeded') this.switched.add(host)
      if (e.status === 'failed') this.failed.add(host)
    }
    // An event without a message gets its words from the log view (lineText), in the reader's
    // language.
    const text = e.message
    for (const part of text.split('\n')) {
      const n = this.lines.length
      this.lines.push({ n, eventId: e.id, at: e.at, host, stage: e.stage, status: e.status, text: part })
      this.byLane.get(host)?.push(n)
      lane.lines += 1
    }
    return true
  }

  /** The hosts' lanes (not the release server), in first-seen order. */
  hostLanes(): Lane[] {
    return [...this.lanes.values()].filter((l) => l.host !== SERVER)
  }
}

/** A feed with a reactive `version`, bumped once per frame after events arrive. */
export function useFeed(hosts: string[] = []) {
  const feed = shallowRef(new ReleaseFeed(hosts))
  const version = shallowRef(0)
  let scheduled = false
  const schedule = typeof requestAnimationFrame === 'function' ? requestAnimationFrame : (f: () => void) => setTimeout(f, 16)
  function push(e: Event) {
    if (!feed.value.apply(e) || scheduled) return
    scheduled = true
    schedule(() => {
      scheduled = false
      version.value += 1
      triggerRef(feed)
    })
  }
  function reset(hostNames: string[]) {
    feed.value = new ReleaseFeed(hostNames)
    version.value += 1
  }
  return { feed, version, push, reset }
}
