import { describe, expect, it } from 'vitest'
import { followEvents, SseParser, type SseMessage } from './sse'

const enc = new TextEncoder()

/** A response whose body sends `chunks`, then either ends or fails (a dropped connection). */
function streamResponse(chunks: string[], drop = false): Response {
  const queue = [...chunks]
  // One chunk per read, then the end or the failure (erroring at once would drop queued chunks).
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      const next = queue.shift()
      if (next !== undefined) c.enqueue(enc.encode(next))
      else if (drop) c.error(new TypeError('network error'))
      else c.close()
    },
  })
  return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } })
}

const msg = (id: number, type = 'stage') => `id: ${id}\nevent: ${type}\ndata: {"id":${id}}\n\n`

describe('the SSE parser', () => {
  it('splits messages across chunk boundaries and CRLF line ends', () => {
    const p = new SseParser()
    const out: SseMessage[] = []
    p.push('id: 1\r\nevent: stage\r\nda', (m) => out.push(m))
    p.push('ta: {"a":\r\ndata: 1}\r\n\r\n: keep-alive\n\n', (m) => out.push(m))
    expect(out).toEqual([{ id: '1', event: 'stage', data: '{"a":\n1}' }])
    expect(p.lastEventId).toBe('1')
  })
})

describe('following a release stream', () => {
  it('resumes after a dropped connection with Last-Event-ID: no event lost or doubled', async () => {
    const requests: (string | null)[] = []
    const responses = [
      // The first connection drops in the middle of event 3.
      streamResponse([msg(1), msg(2), 'id: 3\nevent: stage\ndata: {"id"'], true),
      // The server resumes after 2 (what the client last saw whole) and ends the stream.
      streamResponse([msg(3), msg(4), msg(5, 'end')]),
    ]
    const seen: number[] = []
    await followEvents({
      url: '/api/releases/1/events',
      token: () => 'tok',
      endType: 'end',
      retryMs: 1,
      onMessage: (m) => seen.push(JSON.parse(m.data).id),
      fetch: (async (_url: string, init: RequestInit) => {
        const h = init.headers as Record<string, string>
        requests.push(h['Last-Event-ID'] ?? null)
        expect(h.Authorization).toBe('Bearer tok')
        return responses.shift()!
      }) as never,
    })
    expect(seen).toEqual([1, 2, 3, 4, 5])
    expect(requests).toEqual([null, '2'])
  })

  it('reconnects when the server closes before the end event', async () => {
    const responses = [streamResponse([msg(7)]), streamResponse([msg(8, 'end')])]
    const ids: (string | null)[] = []
    const seen: number[] = []
    await followEvents({
      url: '/x',
      lastEventId: '6',
      endType: 'end',
      retryMs: 1,
      onMessage: (m) => seen.push(JSON.parse(m.data).id),
      fetch: (async (_u: string, init: RequestInit) => {
        ids.push((init.headers as Record<string, string>)['Last-Event-ID'] ?? null)
        return responses.shift()!
      }) as never,
    })
    expect(ids).toEqual(['6', '7'])
    expect(seen).toEqual([7, 8])
  })

  it('gives up on a 4xx answer', async () => {
    await expect(
      followEvents({
        url: '/x',
        endType: 'end',
        onMessage: () => {},
        fetch: (async () => new Response('{"error":"forbidden"}', { status: 403 })) as never,
      }),
    ).rejects.toMatchObject({ status: 403 })
  })
})
