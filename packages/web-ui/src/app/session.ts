/** The signed-in user's credentials, kept in sessionStorage only (gone when the tab closes). */
import type { Credentials } from '../api/client';

const KEY = 'entrepot.session';

export function loadSession(): Credentials | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const value: unknown = JSON.parse(raw);
    if (typeof value === 'object' && value !== null) {
      const { username, password } = value as { username?: unknown; password?: unknown };
      if (typeof username === 'string' && typeof password === 'string') return { username, password };
    }
  } catch {
    // unreadable: treat as signed out
  }
  return null;
}

export function saveSession(creds: Credentials): void {
  sessionStorage.setItem(KEY, JSON.stringify(creds));
}

export function clearSession(): void {
  sessionStorage.removeItem(KEY);
}
