import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { useSession } from '@/stores/session'
import { i18n } from '@/i18n'

// Pages load on demand: the first load is the login page or the releases list only.
const routes: RouteRecordRaw[] = [
  { path: '/login', name: 'login', component: () => import('@/pages/LoginPage.vue'), meta: { public: true, title: 'login.submit' } },
  {
    path: '/',
    component: () => import('@/layouts/MainLayout.vue'),
    children: [
      { path: '', redirect: '/releases' },
      { path: 'releases', name: 'releases', component: () => import('@/pages/ReleasesPage.vue'), meta: { title: 'nav.releases' } },
      { path: 'releases/new', name: 'release-new', component: () => import('@/pages/NewReleasePage.vue'), meta: { title: 'newRelease.title' } },
      { path: 'releases/:id', name: 'release', component: () => import('@/pages/ReleasePage.vue'), props: (r) => ({ id: Number(r.params.id) }), meta: { title: 'nav.releases' } },
      { path: 'apps', name: 'apps', component: () => import('@/pages/AppsPage.vue'), meta: { title: 'nav.apps' } },
      { path: 'configs/new', name: 'config-new', component: () => import('@/pages/ConfigWizard.vue'), meta: { title: 'config.titleNew' } },
      { path: 'configs/:id', name: 'config-edit', component: () => import('@/pages/ConfigWizard.vue'), props: (r) => ({ id: Number(r.params.id) }), meta: { title: 'config.titleEdit' } },
      { path: 'hosts', name: 'hosts', component: () => import('@/pages/HostsPage.vue'), meta: { title: 'nav.hosts' } },
      { path: 'hosts/:id/terminal', name: 'terminal', component: () => import('@/pages/TerminalPage.vue'), props: (r) => ({ id: Number(r.params.id) }), meta: { title: 'nav.terminal' } },
      { path: 'environments', name: 'environments', component: () => import('@/pages/EnvironmentsPage.vue'), meta: { title: 'nav.environments' } },
      { path: 'system/users', name: 'users', component: () => import('@/pages/UsersPage.vue'), meta: { title: 'nav.users' } },
      { path: 'system/roles', name: 'roles', component: () => import('@/pages/RolesPage.vue'), meta: { title: 'nav.roles' } },
      { path: 'system/tokens', name: 'tokens', component: () => import('@/pages/TokensPage.vue'), meta: { title: 'nav.tokens' } },
      { path: 'system/lockouts', name: 'lockouts', component: () => import('@/pages/LockoutsPage.vue'), meta: { title: 'nav.lockouts' } },
      { path: 'system/audit', name: 'audit', component: () => import('@/pages/AuditPage.vue'), meta: { title: 'nav.audit' } },
      { path: 'system/terminal-sessions', name: 'terminal-sessions', component: () => import('@/pages/TerminalSessionsPage.vue'), meta: { title: 'nav.terminalSessions' } },
      { path: ':rest(.*)*', redirect: '/releases' },
    ],
  },
]

export const router = createRouter({ history: createWebHistory(), routes })

router.beforeEach((to) => {
  const session = useSession()
  if (!to.meta.public && !session.loggedIn) {
    return { name: 'login', query: to.fullPath !== '/' ? { redirect: to.fullPath } : {} }
  }
  if (to.name === 'login' && session.loggedIn) return { path: '/releases' }
  return true
})

/** The tab's title: the page, then Hippo (follows the language). */
export function pageTitle(): string {
  const key = router.currentRoute.value.meta.title
  return typeof key === 'string' ? `${i18n.global.t(key)} · Hippo` : 'Hippo'
}

router.afterEach(() => {
  document.title = pageTitle()
})
