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

/**
 * The extra parameters of a token request: `scope`, and the resources (RFC 8707) — the one the
 * engine names for this grant (per-resource tokens), else the option's list.
 */
export function grantParameters(
  scope: string | undefined,
  resources: readonly string[],
  resource: string | undefined,
): URLSearchParams {
  const parameters = new URLSearchParams()
  if (scope) parameters.set('scope', scope)
  for (const indicator of resource === undefined ? resources : [resource]) {
    parameters.append('resource', indicator)
  }
  return parameters
}
