// Who is logged in: the bearer token and the user name, kept in localStorage so a reload keeps
// the session (the token expires on the server; a 401 ends it here).
import { defineStore } from 'pinia'

const KEY = 'hippo.session'

interface Saved {
  token: string
  username: string
  expiresAt: string
}

function load(): Saved | null {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Saved | null
    if (s && s.token && (!s.expiresAt || Date.parse(s.expiresAt) > Date.now())) return s
  } catch {
    // an unreadable entry is no session
  }
  return null
}

export const useSession = defineStore('session', {
  state: () => {
    const s = load()
    return { token: s?.token ?? null, username: s?.username ?? '', expiresAt: s?.expiresAt ?? '', expired: false }
  },
  getters: {
    loggedIn: (s) => !!s.token,
  },
  actions: {
    start(token: string, username: string, expiresAt: string) {
      this.token = token
      this.username = username
      this.expiresAt = expiresAt
      this.expired = false
      localStorage.setItem(KEY, JSON.stringify({ token, username, expiresAt }))
    },
    end(expired = false) {
      this.token = null
      this.username = ''
      this.expiresAt = ''
      this.expired = expired
      localStorage.removeItem(KEY)
    },
  },
})
