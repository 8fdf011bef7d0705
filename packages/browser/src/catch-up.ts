import { TabSyncError } from './errors.js'
import { newer, type Stamp, type StampMarks, stampLimit } from './stamp.js'

/**
 * Waits, bounded, until a store's stamp reaches the newest one published by any tab.
 * `changed()` is called by the store after each change it applies.
 */
export function createCatchUp(
  marks: StampMarks | undefined,
  current: () => Stamp,
  timeout: number,
): { catchUp(): Promise<void>; changed(): void } {
  const waiters = new Set<() => void>()
  return {
    async catchUp() {
      if (!marks) return
      const latest = await marks.latest(stampLimit(current()))
      if (!latest || !newer(latest, current())) return
      await new Promise<void>((resolve, reject) => {
        const check = () => {
          if (newer(latest, current())) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve()
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(
            new TabSyncError(
              'CATCH_UP_TIMEOUT',
              `Another tab stored newer tokens that did not reach this tab within ${timeout} ms`,
            ),
          )
        }, timeout)
        waiters.add(check)
      })
    },
    changed() {
      for (const check of [...waiters]) check()
    },
  }
}
