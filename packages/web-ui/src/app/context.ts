/** What every page receives: the API, the signed-in user and navigation. */
import type { EntrepotApi } from '../api/entrepot-api';
import type { CurrentUser } from '../api/types';
import type { Attrs, Child } from '../ui/dom';
import type { Route } from './routes';

export interface AppContext {
  api: EntrepotApi;
  user: CurrentUser;
  navigate(route: Route, options?: { replace?: boolean }): void;
  /** An <a> with a real href that navigates inside the app on a plain click. */
  link(route: Route, attrs: Attrs | null, ...children: Child[]): HTMLAnchorElement;
  /** Reloads the signed-in user (e.g. after creating an organization). */
  refreshUser(): Promise<CurrentUser>;
  signOut(): void;
}
