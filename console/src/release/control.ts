// Cancel and retry, shared by the release page and the releases list: who may press them (the
// same rules in both places), the confirm, the call and the toast.
import { useI18n } from 'vue-i18n'
import { useRouter } from 'vue-router'
import { api, unwrap, type Schemas } from '@/api'
import { useMe } from '@/stores/me'
import { confirm, showError, toast } from '@/ui'

type Release = Schemas['ReleaseOut']

/** Statuses a release can be cancelled in (a scheduled release is approved with a `run_at`). */
const CANCELLABLE: Release['status'][] = ['pending_review', 'approved', 'queued', 'running']

export function useReleaseControl() {
  const { t } = useI18n()
  const router = useRouter()
  const me = useMe()

  /** Cancel needs `release` on the release's environment × app; a running release already asked to stop is not asked again. */
  const canCancel = (r: Release | null | undefined): r is Release =>
    !!r &&
    CANCELLABLE.includes(r.status) &&
    !(r.status === 'running' && r.cancelled_by != null) &&
    me.can('release', r.environment_id, r.app_id)
  /** Retry makes a new release (of the failed hosts), so it needs `request`, like any new release. */
  const canRetry = (r: Release | null | undefined): r is Release =>
    !!r && r.status === 'failed' && me.can('request', r.environment_id, r.app_id)

  /** Confirms and cancels; the release as it is afterwards, or null if not cancelled (declined or refused). */
  async function cancel(r: Release): Promise<Release | null> {
    if (!(await confirm(t('releases.cancelConfirm', { name: r.name })))) return null
    try {
      const out = await unwrap(api.POST('/api/releases/{id}/cancel', { params: { path: { id: r.id } } }))
      toast(t(out.status === 'cancelled' ? 'releases.cancelledNow' : 'releases.cancelAsked'))
      return out
    } catch (e) {
      showError(e)
      return null
    }
  }

  /** Confirms, asks for a retry of the hosts that did not switch and opens the new release. */
  async function retry(r: Release): Promise<void> {
    if (!(await confirm(t('releases.retryConfirm', { name: r.name }), false))) return
    try {
      const out = await unwrap(api.POST('/api/releases/{id}/retry', { params: { path: { id: r.id } } }))
      toast(t('releases.retried'))
      await router.push({ name: 'release', params: { id: out.id } })
    } catch (e) {
      showError(e)
    }
  }

  return { canCancel, canRetry, cancel, retry }
}
