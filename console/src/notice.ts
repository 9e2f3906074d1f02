// Notice channels as the config wizard edits them, and their JSON for the API.

export interface ChannelForm {
  type: 'dingtalk' | 'wecom' | 'feishu' | 'webhook' | 'email' | 'sms'
  [field: string]: string
}

export type Field = { key: string; label: string; secret?: boolean; optional?: boolean }
export const FIELDS: Record<ChannelForm['type'], Field[]> = {
  dingtalk: [{ key: 'webhook_url', label: 'config.noticeUrl', secret: true }, { key: 'secret', label: 'config.noticeSecret', secret: true }],
  wecom: [{ key: 'webhook_url', label: 'config.noticeUrl', secret: true }],
  feishu: [{ key: 'webhook_url', label: 'config.noticeUrl', secret: true }, { key: 'secret', label: 'config.noticeSecret', secret: true, optional: true }],
  webhook: [{ key: 'url', label: 'config.noticeUrl', secret: true }, { key: 'secret', label: 'config.noticeSecret', secret: true }],
  email: [
    { key: 'host', label: 'config.noticeSmtpHost' },
    { key: 'port', label: 'config.noticePort', optional: true },
    { key: 'username', label: 'config.noticeUser', optional: true },
    { key: 'password', label: 'config.noticePassword', secret: true, optional: true },
    { key: 'from', label: 'config.noticeFrom' },
    { key: 'to', label: 'config.noticeTo' },
  ],
  sms: [
    { key: 'access_key_id', label: 'config.noticeAccessKey' },
    { key: 'access_key_secret', label: 'config.noticeAccessSecret', secret: true },
    { key: 'sign_name', label: 'config.noticeSignName' },
    { key: 'template_code', label: 'config.noticeTemplate' },
    { key: 'phone_numbers', label: 'config.noticePhones' },
  ],
}
export const TYPES = Object.keys(FIELDS) as ChannelForm['type'][]
export const LABELS: Record<ChannelForm['type'], string> = {
  dingtalk: '钉钉 DingTalk', wecom: '企业微信 WeCom', feishu: '飞书 Feishu', webhook: 'Webhook', email: 'Email', sms: 'SMS (Aliyun)',
}

/** The API's JSON for the channels (lists split on commas, empty optional fields left out). */
export function toApi(list: ChannelForm[]): Record<string, unknown>[] {
  return list.map((c) => {
    const out: Record<string, unknown> = { type: c.type }
    for (const f of FIELDS[c.type]) {
      const v = (c[f.key] ?? '').trim()
      if (!v && f.optional) continue
      if (f.key === 'to' || f.key === 'phone_numbers') out[f.key] = v.split(',').map((s) => s.trim()).filter(Boolean)
      else if (f.key === 'port') out[f.key] = Number(v)
      else out[f.key] = v
    }
    if (c.type === 'email') out.security = c.security || 'starttls'
    return out
  })
}
