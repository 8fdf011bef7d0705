import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createAuthServer } from './auth-server.js'

const auth = createAuthServer()
const server = setupServer(...auth.handlers)

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterEach(() => auth.reset())
afterAll(() => server.close())

function refresh(refreshToken: string | undefined) {
  return fetch(auth.tokenEndpoint, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken ?? '' }),
  })
}

/** Records the order in which requests settle. */
function track(order: string[], name: string, request: Promise<Response>) {
  return request.then((response) => {
    order.push(name)
    return response
  })
}

describe('hold', () => {
  it('holds the next token request until release(), letting later ones through', async () => {
    const a = auth.signIn()
    const b = auth.signIn()
    const order: string[] = []
    const gate = auth.hold()
    const first = track(order, 'first', refresh(a.refreshToken))
    await gate.reached
    expect(auth.counters.tokenRequests).toBe(1)
    expect(auth.counters.grants).toBe(0)

    const second = await track(order, 'second', refresh(b.refreshToken))
    expect(second.status).toBe(200)
    expect(order).toEqual(['second'])

    gate.release()
    expect((await first).status).toBe(200)
    expect(order).toEqual(['second', 'first'])
    expect(auth.counters.grants).toBe(2)
  })

  it('applies several holds to successive requests, released in any order', async () => {
    const a = auth.signIn()
    const b = auth.signIn()
    const order: string[] = []
    const gateA = auth.hold()
    const gateB = auth.hold()
    const first = track(order, 'a', refresh(a.refreshToken))
    await gateA.reached
    const second = track(order, 'b', refresh(b.refreshToken))
    await gateB.reached
    gateB.release()
    await second
    expect(order).toEqual(['b'])
    gateA.release()
    await first
    expect(order).toEqual(['b', 'a'])
  })

  it('does not wait when released before the request arrives', async () => {
    const tokens = auth.signIn()
    const gate = auth.hold()
    gate.release()
    const response = await refresh(tokens.refreshToken)
    expect(response.status).toBe(200)
    await gate.reached
  })

  it('composes with enqueue: the released request takes the next queued outcome', async () => {
    const a = auth.signIn()
    const b = auth.signIn()
    auth.enqueue({ type: 'status', status: 500 }, { type: 'status', status: 502 })
    const gate = auth.hold()
    const held = refresh(a.refreshToken)
    await gate.reached
    // The unheld request goes first, so it takes the first outcome.
    expect((await refresh(b.refreshToken)).status).toBe(500)
    gate.release()
    expect((await held).status).toBe(502)
  })

  it('lets a held request meet an outcome queued while it waited', async () => {
    const tokens = auth.signIn()
    const gate = auth.hold()
    const held = refresh(tokens.refreshToken)
    await gate.reached
    auth.enqueue({ type: 'oauth-error', error: 'invalid_grant' })
    gate.release()
    const response = await held
    expect(response.status).toBe(400)
    expect(await response.json()).toEqual({ error: 'invalid_grant' })
  })

  it('reproduces a lost rotation race deterministically', async () => {
    // Two refreshes with the same token: the held one arrives second at the grant logic.
    const tokens = auth.signIn()
    const gate = auth.hold()
    const slow = refresh(tokens.refreshToken)
    await gate.reached
    const fast = await refresh(tokens.refreshToken)
    expect(fast.status).toBe(200)
    gate.release()
    expect((await slow).status).toBe(400)
    expect(auth.counters).toMatchObject({ grants: 1, reuseDetected: 1, failures: 1 })
    expect(auth.presentedRefreshTokens).toEqual([tokens.refreshToken, tokens.refreshToken])
  })

  it('reset() releases a waiting request instead of leaving it hanging', async () => {
    const tokens = auth.signIn()
    const gate = auth.hold()
    const held = refresh(tokens.refreshToken)
    await gate.reached
    auth.reset()
    const response = await held
    expect(await response.json()).toMatchObject({ error: 'invalid_grant' })
  })
})
