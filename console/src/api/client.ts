// The typed API client: every call goes through the types generated from openapi/openapi.json
// (schema.d.ts, `npm run gen:api`). Errors come back as `ApiError` carrying the API's Problem
// body (code, message, the field at fault, the missing permission).
import createClient, { type Client, type Middleware } from 'openapi-fetch'
import type { components, paths } from './schema'

export type Schemas = components['schemas']
export type Problem = Schemas['Problem']

export class ApiError extends Error {
  readonly status: number
  readonly problem: Problem

  constructor(status: number, problem: Problem) {
    super(problem.message)
    this.name = 'ApiError'
    this.status = status
    this.problem = problem
  }

  /** The field the API named (422 `invalid_field`), if any. */
  get field(): string | undefined {
    return this.problem.field ?? undefined
  }
}

export interface ClientOptions {
  baseUrl?: string
  /** The bearer token to send, if any (read on every request). */
  token: () => string | null
  /** Called on any 401 from a request that carried a token: the session is over. */
  onUnauthorized?: () => void
  fetch?: typeof globalThis.fetch
}

export type Api = Client<paths>

export function createApi(opts: ClientOptions): Api {
  const client = createClient<paths>({
    baseUrl: opts.baseUrl ?? '',
    fetch: opts.fetch ? (req: Request) => opts.fetch!(req) : undefined,
  })
  const auth: Middleware = {
    onRequest({ request }) {
      const token = opts.token()
      if (token) request.headers.set('Authorization', `Bearer ${token}`)
      return request
    },
    onResponse({ request, response }) {
      if (response.status === 401 && request.headers.has('Authorization')) opts.onUnauthorized?.()
      return response
    },
  }
  client.use(auth)
  return client
}

/** A problem body from whatever the server answered (JSON Problem or not). */
export function toProblem(status: number, body: unknown): Problem {
  if (body && typeof body === 'object' && 'message' in body && 'error' in body) {
    return body as Problem
  }
  const text = typeof body === 'string' && body ? body : `HTTP ${status}`
  return { error: status === 0 ? 'network' : 'http_error', message: text }
}

/**
 * Resolves to the data of a successful call, or throws `ApiError`. A failed fetch (server
 * down, connection refused) is an `ApiError` with status 0.
 */
export async function unwrap<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let res: { data?: T; error?: unknown; response: Response }
  try {
    res = await call
  } catch (e) {
    throw new ApiError(0, toProblem(0, e instanceof Error ? e.message : String(e)))
  }
  if (!res.response.ok) throw new ApiError(res.response.status, toProblem(res.response.status, res.error))
  return res.data as T
}
