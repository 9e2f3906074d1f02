// What the logged-in user may do, from `GET /api/me`, for permission-aware buttons. The API
// enforces every permission itself (a 403 names what is missing); this only hides what would
// be refused.
import { defineStore } from 'pinia'
import { api, unwrap, type Schemas } from '@/api'

export type Permission = Schemas['Permission']

export const useMe = defineStore('me', {
  state: () => ({
    loaded: false,
    userId: null as number | null,
    isAdmin: false,
    everywhere: [] as Permission[],
    environments: [] as Schemas['EnvironmentAccessOut'][],
    users: [] as Schemas['UserOut'][],
  }),
  actions: {
    async load() {
      try {
        const me = await unwrap(api.GET('/api/me'))
        this.userId = me.id
        this.isAdmin = me.is_admin
        this.everywhere = me.everywhere
        this.environments = me.environments
        this.loaded = true
      } catch {
        // a 401 is handled by the client; anything else leaves every button shown
      }
    },
    reset() {
      this.$reset()
    },
    /** Whether the user may do `p` in this environment for this app (null: anywhere / any). */
    can(p: Permission, environmentId: number | null = null, appId: number | null = null): boolean {
      if (!this.loaded || this.isAdmin || this.everywhere.includes(p)) return true
      const envs = environmentId === null ? this.environments : this.environments.filter((e) => e.environment_id === environmentId)
      return envs.some(
        (e) =>
          e.permissions.includes(p) ||
          e.apps.some((a) => (appId === null || a.app_id === appId) && a.permissions.includes(p)),
      )
    },
  },
})
