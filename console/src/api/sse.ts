// A Server-Sent Events reader over fetch: EventSource cannot send a bearer token. It follows a
// stream, remembers the last event id, and after a dropped connection reconnects with
// `Last-Event-ID`, so the server resumes exactly after the last event seen: no event is lost
// or doubled. It stops when the server closes the stream after an event of type `endType`,
// on a 4xx answer, or when `signal` aborts.

export interface SseMessage {
  id: string | null
  event: string
  data: string
}

export interface FollowOptions {
  url: string
  token?: () => string | null
  /** Resume after this id (also sent on the first request). */
  lastEventId?: string | null
  onMessage: (m: SseMessage) => void
  /** Connection state changes, for a "reconnecting…" badge. */
  onState?: (s: 'open' | 'retrying' | 'closed') => void
  /** The stream is complete when the server closes it right after this event type. */
  endType?: string
  signal?: AbortSignal
  /** Wait before reconnecting (ms). */
  retryMs?: number
  fetch?: typeof globalThis.fetch
}

export class SseHttpError extends Error {
  readonly status: number
  constructor(status: number, text: string) {
    super(text || `HTTP ${status}`)
    this.status = status
  }
}

/** Splits a text stream into SSE messages; keeps partial lines between chunks. */
export class SseParser {
  private buf = ''
  private data: string[] = []
  private event = ''
  private id: string | null = null
  private sawData = false
  lastEventId: string | null = null

  push(chunk: string, emit: (m: SseMessage) => void): void {
    this.buf += chunk
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf)
      // A lone \r at the end may be the first half of \r\n: wait for more.
      if (!m || (m[0] === '\r' && m.index === this.buf.length - 1)) return
      const line = this.buf.slice(0, m.index)
      this.buf = this.buf.slice(m.index + m[0].length)
      this.line(line, emit)
    }
  }

  private line(line: string, emit: (m: SseMessage) => void): void {
    if (line === '') {
      if (this.id !== null) this.lastEventId = this.id
      if (this.sawData) emit({ id: this.id ?? this.lastEventId, event: this.event || 'message', data: this.data.join('\n') })
      this.data = []
      this.event = ''
      this.id = null
      this.sawData = false
      return
    }
    if (line.startsWith(':')) return
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'data') {
      this.data.push(value)
      this.sawData = true
    } else if (field === 'event') this.event = value
    else if (field === 'id' && !value.includes('\0')) this.id = value
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => {
      clearTimeout(t)
      resolve()
    })
  })

/** Follows the stream until it is complete; rejects on a 4xx (e.g. 401, 403, 404). */
export async function followEvents(o: FollowOptions): Promise<void> {
  const doFetch = o.fetch ?? globalThis.fetch.bind(globalThis)
  let lastId = o.lastEventId ?? null
  let lastType = ''
  let failures = 0
  while (!o.signal?.aborted) {
    const headers: Record<string, string> = { Accept: 'text/event-stream' }
    const token = o.token?.()
    if (token) headers.Authorization = `Bearer ${token}`
    if (lastId) headers['Last-Event-ID'] = lastId
    try {
      const res = await doFetch(o.url, { headers, signal: o.signal, cache: 'no-store' })
      if (res.status >= 400 && res.status < 500) throw new SseHttpError(res.status, await res.text())
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`)
      o.onState?.('open')
      failures = 0
      const parser = new SseParser()
      parser.lastEventId = lastId
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        parser.push(value, (m) => {
          lastId = m.id ?? lastId
          lastType = m.event
          o.onMessage(m)
        })
      }
      if (o.endType && lastType === o.endType) {
        o.onState?.('closed')
        return
      }
      if (!o.endType) {
        o.onState?.('closed')
        return
      }
    } catch (e) {
      if (e instanceof SseHttpError) {
        o.onState?.('closed')
        throw e
      }
      if (o.signal?.aborted) break
    }
    // Dropped before the end: reconnect (1 s, then up to 10 s apart) and resume after lastId.
    o.onState?.('retrying')
    failures += 1
    await sleep(Math.min(o.retryMs ?? 1000 * failures, 10_000), o.signal)
  }
  o.onState?.('closed')
}
