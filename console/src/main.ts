import { createApp } from 'vue'
import { createPinia } from 'pinia'
import App from './App.vue'
import { pageTitle, router } from './router'
import { i18n, whenLocaleChanges } from './i18n'
import { setUnauthorizedHandler } from './api'
import { useSession } from './stores/session'
import { useMe } from './stores/me'
import './styles.css'

const app = createApp(App)
app.use(createPinia())
app.use(i18n)
app.use(router)

// Any 401 ends the session and shows the login page, coming back here afterwards.
setUnauthorizedHandler(() => {
  const session = useSession()
  if (!session.loggedIn) return
  session.end(true)
  useMe().reset()
  const here = router.currentRoute.value
  if (here.name !== 'login') void router.push({ name: 'login', query: { redirect: here.fullPath } })
})

whenLocaleChanges(() => (document.title = pageTitle()))

app.mount('#app')
