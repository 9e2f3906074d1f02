// The one API client of the app: it sends the session's token, and a 401 ends the session
// (the router then shows the login page).
import { createApi, unwrap, ApiError, type Schemas } from './client'
import { useSession } from '@/stores/session'

export { unwrap, ApiError }
export type { Schemas }

let onUnauthorized: () => void = () => {}

/** What a 401 does (set once by main.ts: log out and go to the login page). */
export function setUnauthorizedHandler(f: () => void): void {
  onUnauthorized = f
}

export const api = createApi({
  token: () => useSession().token,
  onUnauthorized: () => onUnauthorized(),
})
