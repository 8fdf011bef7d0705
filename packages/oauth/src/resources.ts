import { ReauthOptionsError } from '@reauth/core'

/**
 * The `resource` option as a list, checked: each an absolute URI without a fragment
 * (RFC 8707 §2).
 */
export function resourceList(resource: string | readonly string[] | undefined): string[] {
  if (resource === undefined) return []
  const list = typeof resource === 'string' ? [resource] : resource
  if (!Array.isArray(list)) {
    throw new ReauthOptionsError('"resource" must be a string or an array of strings')
  }
  for (const value of list) {
    if (typeof value !== 'string' || !URL.canParse(value) || new URL(value).hash !== '') {
      throw new ReauthOptionsError('"resource" must be absolute URIs without a fragment (RFC 8707)')
    }
  }
  return [...list]
}
