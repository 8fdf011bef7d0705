import type { LockManagerLike } from './web-lock.js'

/** When a change was made and by whom: the newer change wins, in every tab, in any arrival order. */
export interface Stamp {
  time: number
  writer: string
}

/** The stamp of a store that has seen no change. */
export const NONE: Stamp = { time: 0, writer: '' }

/** Is `a` a later change than `b`? */
export function newer(a: Stamp, b: Stamp): boolean {
  return a.time > b.time || (a.time === b.time && a.writer > b.writer)
}

/**
 * How far ahead of the present a stamp from another tab may be: one minute. Tabs share the
 * machine's clock, so a real stamp is at most a few ms ahead (several writes in one ms).
 * A stamp beyond would win over every later legitimate write: a forged far-future message
 * would freeze every tab's store.
 */
export const STAMP_SKEW_MS = 60_000

/**
 * The latest stamp time a store accepts: the present (the later of this tab's clock and the
 * newest change it holds, so a clock set back does not make the tabs refuse each other's
 * writes) plus {@link STAMP_SKEW_MS}.
 */
export function stampLimit(own: Stamp = NONE): number {
  return Math.min(Number.MAX_SAFE_INTEGER, Math.max(Date.now(), own.time) + STAMP_SKEW_MS)
}

/** A stamp from untrusted data, or `undefined` (also when its time is beyond `limit`). */
export function readStamp(value: unknown, limit: number): Stamp | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const { time, writer } = value as Partial<Stamp>
  // An integer: `time + 1` must be a later time (it is not beyond 2^53).
  if (typeof time !== 'number' || !Number.isSafeInteger(time) || time < 0) return undefined
  if (typeof writer !== 'string' || writer.includes('#')) return undefined
  if (time > limit) return undefined
  return { time, writer }
}

/** A new stamp by `writer`, never behind `last` even if this tab's clock is. */
export function nextStamp(last: Stamp, writer: string): Stamp {
  return { time: Math.max(Date.now(), last.time + 1), writer }
}

/** A random id for this store instance (one tab's writer id). */
export function randomId(): string {
  const crypto = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto
  return (
    crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`
  )
}

/**
 * Publishes the stamp of the set a tab holds as the name of a shared Web Lock, so that a tab
 * that gets the refresh lock can learn, from the lock manager (which every tab sees the same),
 * that a newer set exists whose message has not reached it yet. A message and a lock grant
 * travel separately: without this, a tab could re-read an old set after the holder released
 * the lock and spend an already rotated refresh token.
 */
export interface StampMarks {
  /** Hold the mark of `stamp` (and drop the previous one); resolves once it is held. */
  publish(stamp: Stamp): Promise<void>
  /** The newest stamp any tab holds a mark of, ignoring marks beyond `limit` (forged). */
  latest(limit: number): Promise<Stamp | undefined>
  /** Drop this tab's mark. */
  close(): void
}

export function createStampMarks(locks: LockManagerLike, prefix: string): StampMarks {
  let held: { stamp: Stamp; release: () => void; released: Promise<unknown> } | undefined
  let closed = false
  const base = `${prefix}#`
  return {
    async publish(stamp) {
      if (closed || stamp === NONE) return
      if (held && held.stamp.time === stamp.time && held.stamp.writer === stamp.writer) return
      const previous = held
      await new Promise<void>((granted) => {
        let release = () => {}
        const taken = new Promise<void>((resolve) => {
          release = resolve
        })
        const released = locks
          .request(`${base}${stamp.time}#${stamp.writer}`, { mode: 'shared' }, () => {
            held = { stamp, release, released }
            granted()
            return taken
          })
          // A mark that cannot be taken only weakens the check; the refresh goes on.
          .catch(() => granted())
      })
      previous?.release()
      if (closed) held?.release()
      await previous?.released
    },
    async latest(limit) {
      if (typeof locks.query !== 'function') return undefined
      const snapshot = await locks.query()
      let best: Stamp | undefined
      for (const lock of snapshot.held ?? []) {
        const name = lock.name
        if (typeof name !== 'string' || !name.startsWith(base)) continue
        const [time, writer] = name.slice(base.length).split('#')
        const stamp = readStamp({ time: Number(time), writer }, limit)
        if (stamp && (!best || newer(stamp, best))) best = stamp
      }
      return best
    },
    close() {
      closed = true
      held?.release()
    },
  }
}
