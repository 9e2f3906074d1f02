import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { useSession } from '@/stores/session'

// Pages load on demand: the first load is the login page or the releases list only.
const routes: RouteRecordRaw[] = [
  { path: '/login', name: 'login', component: () => import('@/pages/LoginPage.vue'), meta: { public: true } },
  {
    path: '/',
    component: () => import('@/layouts/MainLayout.vue'),
    children: [
      { path: '', redirect: '/releases' },
      { path: 'releases', name: 'releases', component: () => import('@/pages/ReleasesPage.vue') },
      { path: 'releases/new', name: 'release-new', component: () => import('@/pages/NewReleasePage.vue') },
      { path: 'releases/:id', name: 'release', component: () => import('@/pages/ReleasePage.vue'), props: (r) => ({ id: Number(r.params.id) }) },
      { path: 'apps', name: 'apps', component: () => import('@/pages/AppsPage.vue') },
      { path: 'configs/new', name: 'config-new', component: () => import('@/pages/ConfigWizard.vue') },
      { path: 'configs/:id', name: 'config-edit', component: () => import('@/pages/ConfigWizard.vue'), props: (r) => ({ id: Number(r.params.id) }) },
      { path: 'hosts', name: 'hosts', component: () => import('@/pages/HostsPage.vue') },
      { path: 'environments', name: 'environments', component: () => import('@/pages/EnvironmentsPage.vue') },
      { path: 'system/users', name: 'users', component: () => import('@/pages/UsersPage.vue') },
      { path: 'system/roles', name: 'roles', component: () => import('@/pages/RolesPage.vue') },
      { path: 'system/tokens', name: 'tokens', component: () => import('@/pages/TokensPage.vue') },
      { path: 'system/audit', name: 'audit', component: () => import('@/pages/AuditPage.vue') },
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
