import { describe, expect, it, vi } from 'vitest'
import { ApiError, createApi, unwrap } from './client'

function fakeFetch(status: number, body: unknown, seen: Request[] = []) {
  return vi.fn(async (req: Request) => {
    seen.push(req)
    return new Response(typeof body === 'string' ? body : JSON.stringify(body), {
      status,
      headers: { 'content-type': 'application/json; charset=utf-8' },
    })
  })
}

describe('the API client', () => {
  it('sends the session token as a bearer token', async () => {
    const seen: Request[] = []
    const client = createApi({ baseUrl: 'http://hippo', token: () => 'tok-1', fetch: fakeFetch(200, [], seen) as never })
    await unwrap(client.GET('/api/environments'))
    expect(seen[0]?.headers.get('Authorization')).toBe('Bearer tok-1')
    expect(seen[0]?.url).toBe('http://hippo/api/environments')
  })

  it('sends no Authorization header without a token', async () => {
    const seen: Request[] = []
    const client = createApi({ baseUrl: 'http://hippo', token: () => null, fetch: fakeFetch(200, { token: 't', username: 'a', expires_at: '' }, seen) as never })
    await unwrap(client.POST('/api/auth/login', { body: { username: 'a', password: 'b' } }))
    expect(seen[0]?.headers.has('Authorization')).toBe(false)
  })

  it('ends the session on a 401 to an authenticated call', async () => {
    const onUnauthorized = vi.fn()
    const client = createApi({
      baseUrl: 'http://hippo',
      token: () => 'expired',
      onUnauthorized,
      fetch: fakeFetch(401, { error: 'unauthorized', message: 'a valid bearer token is required' }) as never,
    })
    await expect(unwrap(client.GET('/api/releases', { params: { query: {} } }))).rejects.toMatchObject({ status: 401 })
    expect(onUnauthorized).toHaveBeenCalledOnce()
  })

  it('turns a problem body into an ApiError naming the field', async () => {
    const client = createApi({
      baseUrl: 'http://hippo',
      token: () => 't',
      fetch: fakeFetch(422, { error: 'invalid_field', message: 'deploy_path must be absolute', field: 'deploy_path' }) as never,
    })
    const err = await unwrap(client.POST('/api/environments', { body: { name: 'x', tag: 'x', description: '' } })).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect((err as ApiError).status).toBe(422)
    expect((err as ApiError).field).toBe('deploy_path')
    expect((err as ApiError).message).toBe('deploy_path must be absolute')
  })

  it('reports an unreachable server as status 0', async () => {
    const client = createApi({
      baseUrl: 'http://hippo',
      token: () => 't',
      fetch: (async () => {
        throw new TypeError('Failed to fetch')
      }) as never,
    })
    await expect(unwrap(client.GET('/api/environments'))).rejects.toMatchObject({ status: 0, problem: { error: 'network' } })
  })
})
