// Environments, apps, hosts and configs, loaded once and refreshed after a change: many pages
// show their names next to ids.
import { defineStore } from 'pinia'
import { api, unwrap, type Schemas } from '@/api'

export const useLookups = defineStore('lookups', {
  state: () => ({
    environments: [] as Schemas['EnvironmentOut'][],
    // The API describes apps with the same schema as environments (name, tag, description).
    apps: [] as Schemas['EnvironmentOut'][],
    configs: [] as Schemas['ConfigOut'][],
    hosts: [] as Schemas['HostOut'][],
  }),
  actions: {
    async loadEnvironments() {
      this.environments = await unwrap(api.GET('/api/environments'))
    },
    async loadApps() {
      this.apps = await unwrap(api.GET('/api/apps'))
    },
    async loadConfigs() {
      this.configs = await unwrap(api.GET('/api/release-configs'))
    },
    async loadHosts() {
      this.hosts = await unwrap(api.GET('/api/hosts'))
    },
    async loadAll() {
      await Promise.all([this.loadEnvironments(), this.loadApps(), this.loadConfigs(), this.loadHosts()])
    },
    envName(id: number | null | undefined): string {
      const e = this.environments.find((x) => x.id === id)
      return e ? e.name : id == null ? '' : `#${id}`
    },
    appName(id: number | null | undefined): string {
      const a = this.apps.find((x) => x.id === id)
      return a ? a.name : id == null ? '' : `#${id}`
    },
    hostName(id: number): string {
      return this.hosts.find((x) => x.id === id)?.name ?? `#${id}`
    },
    config(appId: number, environmentId: number) {
      return this.configs.find((c) => c.app_id === appId && c.environment_id === environmentId)
    },
  },
})
