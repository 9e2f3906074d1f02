// What the logged-in user may do, for permission-aware buttons. The API enforces every
// permission itself (a 403 names what is missing); this only hides what would be refused.
//
// Until the API has `GET /api/me`, the console learns only whether the user is an admin (the
// admin-only user list answers) and then knows everything; for other users `known` stays
// false and every button is shown, the API's 403 being the answer.
import { defineStore } from 'pinia'
import { api, unwrap, type Schemas } from '@/api'

export type Permission = 'edit_configs' | 'request' | 'review' | 'release' | 'manage_hosts' | 'admin'

export interface Grant {
  permission: Permission
  environmentId: number | null
  appId: number | null
}

export const useMe = defineStore('me', {
  state: () => ({
    loaded: false,
    known: false,
    isAdmin: false,
    userId: null as number | null,
    grants: [] as Grant[],
    users: [] as Schemas['UserOut'][],
  }),
  actions: {
    async load(username: string) {
      try {
        const users = await unwrap(api.GET('/api/users'))
        this.users = users
        this.isAdmin = true
        this.known = true
        this.userId = users.find((u) => u.username === username)?.id ?? null
      } catch {
        this.isAdmin = false
        this.known = false
        this.users = []
      }
      this.loaded = true
    },
    reset() {
      this.$reset()
    },
    /** Whether the user may do `p` for this environment and app (null: somewhere). */
    can(p: Permission, environmentId: number | null = null, appId: number | null = null): boolean {
      if (!this.known || this.isAdmin) return true
      return this.grants.some(
        (g) =>
          g.permission === p &&
          (g.environmentId === null || environmentId === null || g.environmentId === environmentId) &&
          (g.appId === null || appId === null || g.appId === appId),
      )
    },
    /** A user's name from their id (admins see the user list), else `#id`. */
    userName(id: number | null | undefined): string {
      if (id == null) return ''
      return this.users.find((u) => u.id === id)?.username ?? `#${id}`
    },
  },
})
