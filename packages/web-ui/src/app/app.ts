/** The application shell: session, routing, and which page renders where. */
import { ApiClient, type Credentials } from '../api/client';
import { EntrepotApi } from '../api/entrepot-api';
import type { CurrentUser } from '../api/types';
import { renderApiReferencePage } from '../pages/api-reference-page';
import { renderLayout } from '../pages/layout';
import { renderLoginPage } from '../pages/login-page';
import { renderNotFoundPage } from '../pages/not-found-page';
import { renderOrganizationPage } from '../pages/organization-page';
import { renderOrganizationsPage } from '../pages/organizations-page';
import { renderRepositoryPage } from '../pages/repository-page';
import { errorView, spinner } from '../ui/alerts';
import { h, mount } from '../ui/dom';
import type { AppContext } from './context';
import { parseRoute, routeHref, type Route } from './routes';
import { clearSession, loadSession, saveSession } from './session';

export class App {
  private ctx: AppContext | null = null;
  private signedOutNotice: string | null = null;
  /** Pre-filled on the sign-in form after a failed attempt or an expired session. */
  private lastUsername = '';

  constructor(private readonly root: HTMLElement) {}

  start(): void {
    window.addEventListener('popstate', () => this.render());
    document.addEventListener('click', (event) => this.interceptLink(event));
    const creds = loadSession();
    if (creds) void this.signIn(creds);
    else this.render();
  }

  private interceptLink(event: MouseEvent): void {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const target = event.target instanceof Element ? event.target.closest('a[data-nav]') : null;
    if (!(target instanceof HTMLAnchorElement) || target.origin !== location.origin) return;
    event.preventDefault();
    this.go(target.pathname + target.search);
  }

  private go(href: string, replace = false): void {
    if (href !== location.pathname + location.search) {
      if (replace) history.replaceState(null, '', href);
      else history.pushState(null, '', href);
    }
    window.scrollTo(0, 0);
    this.render();
  }

  /** Uses `creds` for every call after checking them with `GET /user/`. */
  async signIn(creds: Credentials): Promise<void> {
    this.lastUsername = creds.username;
    mount(this.root, spinner('Signing in…'));
    const client = new ApiClient(creds, '/api/v1', () => this.expire());
    const api = new EntrepotApi(client);
    let user: CurrentUser;
    try {
      user = await api.currentUser();
    } catch (err) {
      clearSession();
      this.ctx = null;
      this.render(err);
      return;
    }
    saveSession(creds);
    this.signedOutNotice = null;
    const ctx: AppContext = {
      api,
      user,
      navigate: (route, options) => this.go(routeHref(route), options?.replace),
      link: (route, attrs, ...children) => h('a', { href: routeHref(route), 'data-nav': '', ...attrs }, ...children),
      refreshUser: async () => {
        ctx.user = await api.currentUser();
        return ctx.user;
      },
      signOut: () => this.signOut(),
    };
    this.ctx = ctx;
    this.render();
  }

  signOut(message: string | null = null): void {
    clearSession();
    this.ctx = null;
    this.signedOutNotice = message;
    history.replaceState(null, '', '/');
    this.render();
  }

  /** A 401 mid-session: the password changed or the account went away. */
  private expire(): void {
    if (this.ctx) this.signOut('Your session is no longer valid. Please sign in again.');
  }

  private render(loginError?: unknown): void {
    const ctx = this.ctx;
    if (!ctx) {
      document.title = 'Sign in · Entrepot';
      mount(this.root, renderLoginPage({ onSubmit: (creds) => this.signIn(creds), error: loginError, notice: this.signedOutNotice, username: this.lastUsername }));
      return;
    }
    const route = parseRoute(location.pathname, location.search);
    const main = h('main', { class: 'main', id: 'main' });
    mount(this.root, renderLayout(ctx, route, main));
    this.renderPage(ctx, route, main).catch((err: unknown) => mount(main, errorView(err)));
  }

  private async renderPage(ctx: AppContext, route: Route, main: HTMLElement): Promise<void> {
    switch (route.page) {
      case 'organizations':
        document.title = 'Organizations · Entrepot';
        return renderOrganizationsPage(ctx, main);
      case 'organization':
        document.title = `${route.org} · Entrepot`;
        return renderOrganizationPage(ctx, main, route.org, route.tab);
      case 'repository':
        document.title = `${route.org}/${route.repo} · Entrepot`;
        return renderRepositoryPage(ctx, main, route.org, route.repo, route.manifest);
      case 'api-reference':
        document.title = 'API reference · Entrepot';
        return renderApiReferencePage(ctx, main);
      case 'not-found':
        document.title = 'Not found · Entrepot';
        return renderNotFoundPage(ctx, main, route.path);
    }
  }
}
