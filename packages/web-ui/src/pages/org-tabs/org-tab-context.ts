/** What an organization tab receives. */
import type { Organization, ProxyCacheConfig } from '../../api/types';
import type { AppContext } from '../../app/context';

export interface OrgTabContext {
  app: AppContext;
  org: Organization;
  /** null: not a proxy cache; undefined: unknown (the proxy-cache API is unavailable or denied). */
  cache: ProxyCacheConfig | null | undefined;
  /** Re-reads the organization and its cache configuration and redraws the page header. */
  refreshHeader(): Promise<void>;
}

export type OrgTabRenderer = (tab: OrgTabContext, panel: HTMLElement) => Promise<void>;
