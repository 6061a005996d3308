/** The UI's URLs (history API; the server answers every non-API path with index.html). */

export const ORG_TABS = ['dashboard', 'repositories', 'proxycache', 'quota', 'security', 'robots', 'permissions', 'members', 'logs'] as const;
export type OrgTab = (typeof ORG_TABS)[number];

export type Route =
  | { page: 'organizations' }
  | { page: 'api-reference' }
  | { page: 'organization'; org: string; tab: OrgTab }
  | { page: 'repository'; org: string; repo: string; manifest: string | null }
  | { page: 'not-found'; path: string };

function isOrgTab(value: string): value is OrgTab {
  return (ORG_TABS as readonly string[]).includes(value);
}

function decode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

export function parseRoute(pathname: string, search: string): Route {
  const segments = pathname.split('/').filter(Boolean).map(decode);
  if (segments.some((s) => s === null)) return { page: 'not-found', path: pathname };
  const parts = segments as string[];
  if (parts.length === 0 || (parts.length === 1 && parts[0] === 'organizations')) return { page: 'organizations' };
  if (parts.length === 1 && parts[0] === 'api-reference') return { page: 'api-reference' };
  if (parts[0] === 'organization' && parts.length >= 2 && parts.length <= 3) {
    const tab = parts[2] ?? 'repositories';
    if (isOrgTab(tab)) return { page: 'organization', org: parts[1], tab };
  }
  if (parts[0] === 'repository' && parts.length >= 3) {
    return { page: 'repository', org: parts[1], repo: parts.slice(2).join('/'), manifest: new URLSearchParams(search).get('manifest') };
  }
  return { page: 'not-found', path: pathname };
}

export function routeHref(route: Route): string {
  switch (route.page) {
    case 'organizations':
      return '/organizations';
    case 'api-reference':
      return '/api-reference';
    case 'organization':
      return `/organization/${encodeURIComponent(route.org)}${route.tab === 'repositories' ? '' : `/${route.tab}`}`;
    case 'repository': {
      const path = `/repository/${encodeURIComponent(route.org)}/${route.repo.split('/').map(encodeURIComponent).join('/')}`;
      return route.manifest ? `${path}?manifest=${encodeURIComponent(route.manifest)}` : path;
    }
    case 'not-found':
      return route.path;
  }
}
