/** The frame around every signed-in page: top bar with the user and sign-out. */
import type { AppContext } from '../app/context';
import type { Route } from '../app/routes';
import { h, type Child } from '../ui/dom';

export function logo(): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 32 32');
  svg.setAttribute('class', 'logo');
  svg.setAttribute('aria-hidden', 'true');
  const parts: Array<[string, Record<string, string>]> = [
    ['rect', { width: '32', height: '32', rx: '7', fill: 'currentColor' }],
    ['path', { d: 'M7 14 16 8l9 6v10H7z', fill: 'none', stroke: 'white', 'stroke-width': '2.5', 'stroke-linejoin': 'round' }],
    ['path', { d: 'M12 24v-6h8v6', fill: 'none', stroke: 'white', 'stroke-width': '2.5' }],
  ];
  for (const [tag, attrs] of parts) {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    svg.appendChild(el);
  }
  return svg;
}

export function renderLayout(ctx: AppContext, route: Route, main: HTMLElement): HTMLElement {
  const { user } = ctx;
  return h(
    'div',
    { class: 'shell' },
    h(
      'header',
      { class: 'topbar' },
      h(
        'div',
        { class: 'topbar-inner' },
        ctx.link({ page: 'organizations' }, { class: 'brand' }, logo(), h('span', null, 'Entrepot')),
        h(
          'nav',
          { class: 'topnav', 'aria-label': 'Main' },
          ctx.link({ page: 'organizations' }, { class: route.page === 'organizations' ? 'active' : '' }, 'Organizations'),
          ctx.link({ page: 'api-reference' }, { class: route.page === 'api-reference' ? 'active' : '' }, 'API'),
        ),
        h(
          'div',
          { class: 'user-menu' },
          h('span', { class: 'user-name', 'data-testid': 'current-user' }, user.username),
          user.super_user ? h('span', { class: 'badge badge-accent' }, 'superuser') : null,
          h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'data-testid': 'sign-out', onclick: () => ctx.signOut() }, 'Sign out'),
        ),
      ),
    ),
    main,
  );
}

/** Page title row with breadcrumbs and actions on the right. */
export function pageHeader(crumbs: Child[], title: Child, ...actions: Child[]): HTMLElement {
  return h(
    'div',
    { class: 'page-header' },
    h(
      'div',
      null,
      crumbs.length > 0 ? h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, crumbs.map((c, i) => [i > 0 ? h('span', { class: 'sep' }, '/') : null, c])) : null,
      h('h1', null, title),
    ),
    actions.length > 0 ? h('div', { class: 'page-actions' }, ...actions) : null,
  );
}
