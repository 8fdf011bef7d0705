/** An in-memory `Storage` (getItem / setItem / removeItem) and its backing map, for the browser stores' unit tests. */
export function memoryStorage() {
  const backing = new Map<string, string>()
  return {
    backing,
    storage: {
      getItem: (k: string) => backing.get(k) ?? null,
      setItem: (k: string, v: string) => void backing.set(k, v),
      removeItem: (k: string) => void backing.delete(k),
    } as Storage,
  }
}

/** What the browser fires in the other tabs when one writes localStorage. */
export function storageEvent(
  storageArea: Storage,
  key: string | null,
  newValue: string | null,
): Event {
  return Object.assign(new Event('storage'), { storageArea, key, newValue })
}
