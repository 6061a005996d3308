/**
 * The web UI in a real browser (Debian chromium driven by playwright-core)
 * against a real Entrepot with the proxy-cache plugin and a real upstream
 * registry. Needs a built UI: `npm run build -w @entrepot/web-ui` (CI builds
 * before testing); this test builds nothing itself.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startCacheFixture, type CacheFixture } from '../../proxy-cache/test/e2e/cache-fixture';
import { ADMIN_PASSWORD, ADMIN_USER } from '../../../testing/entrepot-instance';
import { createOciImage, pushImage, skopeoCopyOut } from '../../../testing/oci-images';
import { runKnownSequence } from '../../proxy-cache/test/stats/stats-fixture';

/** axe-core, injected into each screen checked (see `expectAccessible`). */
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

interface AxeViolation {
  id: string;
  impact: string | null;
  nodes: Array<{ target: unknown[] }>;
}

/** Runs axe on the page as it is: no serious or critical violation may remain. */
async function expectAccessible(page: Page, screen: string): Promise<void> {
  await page.addScriptTag({ content: AXE_SOURCE });
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(context: Document, options: object): Promise<{ violations: AxeViolation[] }> } }).axe;
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => ({ rule: v.id, impact: v.impact, targets: v.nodes.map((n) => JSON.stringify(n.target)) }));
  });
  expect({ screen, violations }).toEqual({ screen, violations: [] });
}

const DIST = resolve(__dirname, '../dist');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const ORG = 'hub';
const ROBOT = 'ci_puller';

/** Polls `check` until it passes (audit entries are written asynchronously). */
async function eventually(check: () => Promise<void>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

/** Fails if `secret` is anywhere in the page: markup, text, or the current value of any form control. */
async function expectSecretAbsent(page: Page, secret: string): Promise<void> {
  const found = await page.evaluate((s) => {
    const controls = Array.from(document.querySelectorAll('input, textarea, select')) as Array<HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>;
    return {
      markup: document.documentElement.outerHTML.includes(s),
      text: document.body.innerText.includes(s),
      values: controls.some((c) => c.value.includes(s)),
    };
  }, secret);
  expect(found).toEqual({ markup: false, text: false, values: false });
}

describe('web UI in chromium', () => {
  let fx: CacheFixture;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let shots: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(join(DIST, 'index.html'))) {
      throw new Error(`${DIST}/index.html is missing: run npm run build (or npm run build -w @entrepot/web-ui) before this test`);
    }
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/ci/setup.sh (apt-get install -y chromium)`);
    fx = await startCacheFixture({ entrepot: { overrides: { web_ui_dir: DIST } } });
    const image = await createOciImage(join(fx.work, 'alpine'), { tag: '3.20', layerCount: 2, layerSize: 200_000 });
    await pushImage(image.layoutDir, '3.20', fx.upstream.ref('library/alpine', '3.20'), { creds: fx.upstream.creds });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
    context = await browser.newContext({ viewport: { width: 1360, height: 900 }, acceptDownloads: true });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    shots = mkdtempSync(join(tmpdir(), 'entrepot-ui-screenshots-'));
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await fx?.stop();
    if (shots) process.stdout.write(`web UI screenshots: ${shots}\n`);
  });

  it('serves the single-page app for client-side routes', async () => {
    const res = await fetch(`${fx.entrepot.url}/organization/${ORG}/robots`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<div id="app">');
  });

  it('rejects a wrong password, then signs in and keeps credentials in sessionStorage only', async () => {
    await page.goto(fx.entrepot.url);
    await page.locator('input[name=username]').fill(ADMIN_USER);
    await page.locator('input[name=password]').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('.alert-error').getByText('invalid username or password').waitFor();
    await expectAccessible(page, 'sign-in with an error');

    await page.locator('input[name=password]').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('current-user').getByText(ADMIN_USER).waitFor();
    await page.getByRole('heading', { name: 'Organizations' }).waitFor();
    await expectAccessible(page, 'organizations');
    const storage = await page.evaluate(() => ({ session: JSON.stringify(sessionStorage), local: JSON.stringify(localStorage), cookie: document.cookie }));
    expect(storage.session).toContain(ADMIN_USER);
    expect(storage.local).not.toContain(ADMIN_PASSWORD);
    expect(storage.cookie).toBe('');
  });

  it('creates an organization and configures it as a proxy cache without ever showing the password', async () => {
    const upstream = fx.upstream.credentials!;
    await page.getByTestId('new-org').click();
    await page.locator('[data-testid=create-org-form] input[name=name]').fill(ORG);
    await page.getByTestId('create-org-form').getByRole('button', { name: 'Create organization' }).click();
    await page.waitForURL(`**/organization/${ORG}/proxycache`);

    const form = page.getByTestId('cache-form');
    await form.locator('input[name=upstream_registry]').fill('docker.io');
    await form.locator('input[name=upstream_endpoint]').fill(fx.upstream.url);
    await form.locator('input[name=upstream_registry_username]').fill(upstream.username);
    await form.locator('input[name=upstream_registry_password]').fill(upstream.password);
    await form.locator('input[name=expiration_s]').fill('3600');
    await form.locator('input[name=insecure]').check();

    await page.getByTestId('validate-cache').click();
    await page.getByTestId('cache-form-result').locator('.alert-success').waitFor();

    // Validation with a wrong password fails visibly.
    await form.locator('input[name=upstream_registry_password]').fill('wrong-password');
    await page.getByTestId('validate-cache').click();
    await page.getByTestId('cache-form-result').locator('.alert-error').waitFor();
    await form.locator('input[name=upstream_registry_password]').fill(upstream.password);

    await page.getByTestId('save-cache').click();
    await page.getByTestId('password-state').getByText('set', { exact: true }).waitFor();
    await page.getByTestId('org-kind').getByText('Proxy cache of docker.io').waitFor();
    await expect(page.getByTestId('cache-config').innerText()).resolves.toContain(fx.upstream.url);
    await expectSecretAbsent(page, upstream.password);
    await page.screenshot({ path: join(shots, '1-proxy-cache.png'), fullPage: true });
    await expectAccessible(page, 'proxy cache settings');

    // The API agrees: the configuration is saved, the password is write-only.
    const saved = await fx.entrepot.api('GET', `/organization/${ORG}/proxycache`);
    expect(saved.body).toMatchObject({ upstream_registry: 'docker.io', upstream_endpoint: fx.upstream.url, upstream_registry_password_set: true, expiration_s: 3600, insecure: true });
    expect(JSON.stringify(saved.body)).not.toContain(upstream.password);

    // Saving again without typing a password keeps the stored one.
    await page.getByTestId('cache-form').locator('input[name=expiration_s]').fill('1800');
    await page.getByTestId('save-cache').click();
    await page.getByTestId('cache-config').getByText('30 min').waitFor();
    await page.getByTestId('password-state').getByText('set', { exact: true }).waitFor();
    await expectSecretAbsent(page, upstream.password);
  });

  it('lists what the cache fetched, with tag size and pull statistics', async () => {
    await skopeoCopyOut(`${fx.entrepot.host}/${ORG}/library/alpine:3.20`, join(fx.work, 'pulled'), { creds: `${ADMIN_USER}:${ADMIN_PASSWORD}` });
    await page.locator('[data-tab=repositories]').click();
    await page.getByTestId('repo-list').getByRole('link', { name: 'library/alpine' }).click();
    await page.waitForURL('**/repository/hub/library/alpine');
    const row = page.locator('[data-testid=tag-list] tr[data-key="3.20"]');
    // Pull statistics may be recorded just after the pull returns.
    await eventually(async () => {
      await page.reload();
      const cells = await row.locator('td').allInnerTexts();
      expect(cells[0]).toContain('3.20');
      expect(cells[2]).toMatch(/KiB|MiB/);
      expect(cells[3]).not.toBe('never');
      expect(Number(cells[4])).toBeGreaterThanOrEqual(1);
    });
    await page.screenshot({ path: join(shots, '2-repository.png'), fullPage: true });
    await expectAccessible(page, 'repository');

    // Scan results: either the server has them or the panel says the feature is not available; never an error.
    await row.getByRole('button', { name: 'Security' }).click();
    const panel = page.getByTestId('security-panel');
    await panel.waitFor();
    await panel.locator('.loading').waitFor({ state: 'detached' });
    expect(await panel.locator('.alert-error').count()).toBe(0);
    await expectAccessible(page, 'security panel');
  });

  it('creates a robot, shows its token once, and the token pulls after a grant on all repositories', async () => {
    await page.goto(`${fx.entrepot.url}/organization/${ORG}/robots`);
    await page.getByTestId('create-robot-form').locator('input[name=short]').fill(ROBOT);
    await page.getByTestId('create-robot-form').locator('input[name=description]').fill('CI cluster pulls');
    await page.getByRole('button', { name: 'Create robot' }).click();
    const token = await page.getByTestId('robot-token-value').inputValue();
    expect(token.length).toBeGreaterThanOrEqual(20);
    await expect(page.getByTestId('robot-token-username').inputValue()).resolves.toBe(`${ORG}+${ROBOT}`);
    await page.getByTestId('robot-list').getByText(`${ORG}+${ROBOT}`).waitFor();
    await page.screenshot({ path: join(shots, '3-robots.png'), fullPage: true });
    await expectAccessible(page, 'robots with a new token');

    await page.getByRole('button', { name: 'Apply to all repositories' }).click();
    await page.getByText(`${ORG}+${ROBOT} now has read on 1 repository.`).waitFor();
    const digest = await skopeoCopyOut(`${fx.entrepot.host}/${ORG}/library/alpine:3.20`, join(fx.work, 'robot'), { creds: `${ORG}+${ROBOT}:${token}` });
    expect(digest).toMatch(/^sha256:/);

    // "Done" removes the token from the page; a reload does not bring it back.
    await page.getByRole('button', { name: 'Done' }).click();
    await page.reload();
    await page.getByTestId('robot-list').waitFor();
    await expectAccessible(page, 'robots');
    expect(await page.content()).not.toContain(token);
  });

  it('adds and deletes a default permission', async () => {
    await page.locator('[data-tab=permissions]').click();
    await page.getByTestId('create-prototype-form').locator('input[name=delegate]').fill(`${ORG}+${ROBOT}`);
    await page.getByTestId('create-prototype-form').getByRole('button', { name: 'Add' }).click();
    const row = page.getByTestId('prototype-list').locator('tr', { hasText: `${ORG}+${ROBOT}` });
    await row.waitFor();
    await expectAccessible(page, 'default permissions');
    await row.getByRole('button', { name: 'Delete' }).click();
    await page.getByTestId('confirm').click();
    await page.getByText('No default permissions').waitFor();
  });

  it('shows the audit log with performer, address, metadata and cache results, and downloads it as CSV', async () => {
    await page.locator('[data-tab=logs]').click();
    const list = page.getByTestId('log-list');
    await eventually(async () => {
      await page.getByRole('button', { name: 'Apply' }).click();
      const kinds = await list.locator('[data-kind]').allInnerTexts();
      for (const kind of ['org_create', 'create_proxy_cache_config', 'change_proxy_cache_config', 'create_robot', 'pull_repo', 'create_prototype_permission', 'delete_prototype_permission']) {
        expect(kinds).toContain(kind);
      }
    });
    const pull = list.locator('tr', { has: page.locator('[data-kind=pull_repo]') }).last();
    await expect(pull.getByTestId('cache-result').innerText()).resolves.toBe('miss');
    const robotRow = list.locator('tr', { has: page.locator('[data-kind=create_robot]') });
    await expect(robotRow.innerText()).resolves.toContain(ADMIN_USER);
    await expect(robotRow.innerText()).resolves.toContain('127.0.0.1');
    await page.screenshot({ path: join(shots, '4-logs.png'), fullPage: true });
    await expectAccessible(page, 'logs');

    // Filter by kind.
    await page.getByTestId('log-filters').locator('input[name=kind]').fill('create_robot');
    await page.getByRole('button', { name: 'Apply' }).click();
    await eventually(async () => expect(new Set(await list.locator('[data-kind]').allInnerTexts())).toEqual(new Set(['create_robot'])));

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('logs-csv').click()]);
    const file = join(shots, 'logs.csv');
    await download.saveAs(file);
    const csv = readFileSync(file, 'utf8');
    expect(csv.split('\r\n')[0]).toContain('kind');
    expect(csv).toContain('create_robot');
    expect(csv).not.toContain('pull_repo');
    expect(csv).not.toContain(fx.upstream.credentials!.password);
  });

  it('shows a cache dashboard with the figures of the stats API, switches windows, and says when there is no traffic', async () => {
    await fx.createCacheOrg('dash', { expiration_s: 2 });
    await runKnownSequence(fx.entrepot, fx.upstream, fx.work, 'dash');
    const api = async (window: string) => (await fx.entrepot.api('GET', `/organization/dash/proxycache/stats?window=${window}`)).body as { requests: { hit_ratio: number }; bytes: { saved: number; hit_ratio: number }; pulls: number };
    const day = await api('24h');
    await page.goto(`${fx.entrepot.url}/organization/dash/dashboard`);
    await expect(page.locator('[data-tab]').first().getAttribute('data-tab')).resolves.toBe('dashboard');
    const dashboard = page.getByTestId('dashboard');
    await page.locator('[data-testid=dashboard][data-loaded=true][data-window="24h"]').waitFor();
    const value = async (id: string) => Number(await page.getByTestId(`figure-${id}`).getAttribute('data-value'));
    expect(await value('hit-ratio')).toBe(day.requests.hit_ratio);
    expect(await value('byte-hit-ratio')).toBe(day.bytes.hit_ratio);
    expect(await value('bytes-saved')).toBe(day.bytes.saved);
    expect(await value('pulls')).toBe(day.pulls);
    await expect(page.getByTestId('figure-hit-ratio').innerText()).resolves.toContain(`${(day.requests.hit_ratio * 100).toFixed(1)} %`);
    await expect(page.getByTestId('figure-bytes-saved').innerText()).resolves.toMatch(/KiB|MiB/);
    await expect(page.getByTestId('upstream-health').innerText()).resolves.toContain('network');
    await expect(page.locator('[data-testid=chart-requests-table] tbody tr').count()).resolves.toBe(24);
    await expect(page.getByTestId('top-by-pulls').innerText()).resolves.toContain('library/app');
    await page.screenshot({ path: join(shots, '7-dashboard-24h.png'), fullPage: true });
    await expectAccessible(page, 'dashboard');

    await page.getByTestId('window-switch').getByRole('button', { name: 'Last 7 days' }).click();
    await page.locator('[data-testid=dashboard][data-loaded=true][data-window="7d"]').waitFor();
    await expect(page.getByRole('button', { name: 'Last 7 days' }).getAttribute('aria-pressed')).resolves.toBe('true');
    await expect(page.locator('[data-testid=chart-requests-table] tbody tr').count()).resolves.toBe(28);
    expect(await value('bytes-saved')).toBe((await api('7d')).bytes.saved);
    await page.screenshot({ path: join(shots, '8-dashboard-7d.png'), fullPage: true });
    await expect(dashboard.count()).resolves.toBe(1);

    await fx.createCacheOrg('quiet', { expiration_s: 3600 });
    await page.goto(`${fx.entrepot.url}/organization/quiet/dashboard`);
    await page.locator('[data-testid=dashboard][data-loaded=true]').waitFor();
    await page.getByText('No pulls through this cache in the last 24 hours').waitFor();
    expect(await page.locator('[data-testid^=chart-]').count()).toBe(0);
    await page.screenshot({ path: join(shots, '9-dashboard-empty.png'), fullPage: true });
    await expectAccessible(page, 'empty dashboard');

    // The settings tab sets the lifecycle settings.
    await page.locator('[data-tab=proxycache]').click();
    const form = page.getByTestId('cache-form');
    await form.locator('input[name=idle_expiration_s]').fill('86400');
    await form.locator('input[name=refresh_min_pulls]').fill('5');
    await form.locator('input[name=low_watermark]').fill('90');
    await form.locator('input[name=prefetch_changed_tags]').check();
    await page.getByTestId('save-cache').click();
    await page.getByTestId('cache-config').getByText('90 % of the quota').waitFor();
    const saved = await fx.entrepot.api('GET', '/organization/quiet/proxycache');
    expect(saved.body).toMatchObject({ idle_expiration_s: 86400, refresh_min_pulls: 5, low_watermark: 0.9, prefetch_changed_tags: true });
    await page.goto(`${fx.entrepot.url}/organization/${ORG}/repositories`);
  }, 120_000);

  it('renders quota, members and flush without errors, whatever this server offers', async () => {
    // A quota, so that the usage gauge is on the quota tab when axe checks it.
    expect((await fx.entrepot.api('POST', `/organization/${ORG}/quota`, { limit_bytes: 1024 ** 3 })).status).toBe(201);
    await page.reload();
    for (const tab of ['quota', 'members']) {
      await page.locator(`[data-tab=${tab}]`).click();
      const panel = page.getByTestId(`tab-${tab}`);
      await panel.locator('.loading').waitFor({ state: 'detached' });
      expect(await panel.locator('.alert-error').count()).toBe(0);
      if (tab === 'quota') await panel.getByRole('progressbar', { name: 'Quota usage' }).waitFor();
      await expectAccessible(page, tab);
    }
    await page.locator(`[data-testid=member-list] tr[data-key="${ADMIN_USER}"]`).waitFor();

    await page.locator('[data-tab=proxycache]').click();
    await page.getByTestId('flush-cache').click();
    await page.getByTestId('confirm').click();
    await page.locator('.danger-zone').locator('.alert-success, [data-testid=not-available]').waitFor();
    expect(pageErrors).toEqual([]);
  });

  it("renders the API reference from the server's OpenAPI document", async () => {
    await page.getByRole('link', { name: 'API', exact: true }).click();
    await page.getByRole('heading', { name: 'API reference' }).waitFor();
    const op = page.getByTestId('api-op-createProxyCacheConfig');
    await op.locator('summary').click();
    await expect(op.innerText()).resolves.toContain('/api/v1/organization/{org}/proxycache');
    // The body is described by the schema the server validates with, field by field.
    await expect(op.locator('table.api-fields').innerText()).resolves.toMatch(/upstream_registry[\s\S]*stale_if_error_s/);
    await expect(page.getByTestId('api-tag-robots').innerText()).resolves.toContain('/robots/{short}/permissions');
    await page.screenshot({ path: join(shots, '10-api-reference.png'), fullPage: false });
    expect(pageErrors).toEqual([]);
  });

  it('keeps the session on reload, lists the organization, and signs out', async () => {
    await page.goto(`${fx.entrepot.url}/organizations`);
    const row = page.locator(`[data-testid=org-list] tr[data-key="${ORG}"]`);
    await row.waitFor();
    await expect(row.innerText()).resolves.toContain('Proxy cache · docker.io');
    await page.screenshot({ path: join(shots, '5-organizations.png'), fullPage: true });
    await expectAccessible(page, 'organizations with a cache');
    await page.getByTestId('sign-out').click();
    await page.getByTestId('login-form').waitFor();
    await expect(page.evaluate(() => sessionStorage.length)).resolves.toBe(0);
    await page.screenshot({ path: join(shots, '6-signed-out.png') });
    await expectAccessible(page, 'signed out');
  });
});
