/**
 * Security scanning in the web UI (chromium + playwright-core) against a real
 * Entrepot with a real Clair: the tag's severity badge, the Security panel
 * with the vulnerable package, its fixed-by version and link, and the
 * organization's pull policy. Needs a built UI (`npm run build -w @entrepot/web-ui`).
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startCacheFixture, type CacheFixture } from '../../proxy-cache/test/e2e/cache-fixture';
import { ALPINE_VULNERABLE, scannerEnv, securityPath, VULNERABILITIES, waitForStatus } from '../../proxy-cache/test/scanning/scan-fixture';
import { ClairServer } from '../../../testing/clair';
import { ADMIN_PASSWORD, ADMIN_USER } from '../../../testing/entrepot-instance';
import { pushImage, skopeoCopyOut } from '../../../testing/oci-images';
import { createOsImage } from '../../../testing/os-images';

const DIST = resolve(__dirname, '../dist');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

describe('security scanning in the web UI', () => {
  let clair: ClairServer;
  let fx: CacheFixture;
  let browser: Browser;
  let page: Page;
  let shots: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(join(DIST, 'index.html'))) throw new Error(`${DIST}/index.html is missing: run npm run build -w @entrepot/web-ui before this test`);
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/ci/setup.sh`);
    clair = await ClairServer.start();
    await clair.importVulnerabilities(VULNERABILITIES);
    fx = await startCacheFixture({ auth: { mode: 'anonymous' }, entrepot: { env: scannerEnv(clair), overrides: { web_ui_dir: DIST } } });
    const image = await createOsImage(join(fx.work, 'alpine'), { tag: '3.18', flavour: 'alpine', packages: ALPINE_VULNERABLE });
    await pushImage(join(fx.work, 'alpine'), '3.18', fx.upstream.ref('library/alpine', '3.18'));
    await fx.createCacheOrg('hub');
    await skopeoCopyOut(`${fx.entrepot.host}/hub/library/alpine:3.18`, join(fx.work, 'out'), { creds: `${ADMIN_USER}:${ADMIN_PASSWORD}` });
    await waitForStatus(fx.entrepot, securityPath('hub', 'library/alpine', image.digest), 'scanned');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
    page = await (await browser.newContext({ viewport: { width: 1360, height: 900 } })).newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    shots = mkdtempSync(join(tmpdir(), 'entrepot-security-ui-'));
    await page.goto(fx.entrepot.url);
    await page.locator('input[name=username]').fill(ADMIN_USER);
    await page.locator('input[name=password]').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('current-user').getByText(ADMIN_USER).waitFor();
  });

  afterAll(async () => {
    await browser?.close();
    await fx?.stop();
    await clair?.stop();
    if (shots) process.stdout.write(`security UI screenshots: ${shots}\n`);
  });

  it('shows the severity badge per tag and the vulnerable package in the Security panel', async () => {
    await page.goto(`${fx.entrepot.url}/repository/hub/library/alpine`);
    const row = page.locator('[data-testid=tag-list] tr[data-key="3.18"]');
    const badge = row.getByTestId('severity-badge');
    await badge.waitFor();
    expect(await badge.innerText()).toBe('High · 2');
    expect(await badge.getAttribute('class')).toContain('sev-high');

    await row.getByRole('button', { name: 'Security' }).click();
    const panel = page.getByTestId('security-panel');
    const list = panel.getByTestId('vulnerability-list');
    await list.waitFor();
    const first = list.locator('tbody tr').first();
    const cells = await first.locator('td').allInnerTexts();
    expect(cells).toEqual(['High', 'CVE-2099-0001', 'busybox', '1.36.1-r0', '1.36.1-r1']);
    expect(await first.getByRole('link', { name: 'CVE-2099-0001' }).getAttribute('href')).toBe('https://security.example.test/CVE-2099-0001');
    expect(await panel.locator('.severity-summary').innerText()).toContain('1 High');
    await page.screenshot({ path: join(shots, '1-security-panel.png'), fullPage: true });
  });

  it('sets the organization pull policy from its settings', async () => {
    await page.goto(`${fx.entrepot.url}/organization/hub/security`);
    const form = page.getByTestId('security-policy-form');
    await form.locator('select[name=block_pulls_at_severity]').selectOption('High');
    await form.locator('textarea[name=allowlist]').fill('CVE-2099-0003');
    await form.getByRole('button', { name: 'Save policy' }).click();
    await page.locator('.toast').getByText('Security policy saved').waitFor();
    const saved = await fx.entrepot.api('GET', '/organization/hub/securitypolicy');
    expect(saved.body).toMatchObject({ block_pulls_at_severity: 'High', block_unscanned: false, allowlist: ['CVE-2099-0003'] });
    const refused = await fetch(`${fx.entrepot.url}/v2/hub/library/alpine/manifests/3.18`, { headers: { authorization: fx.entrepot.adminAuth } });
    expect(refused.status).toBe(403);
    await page.reload();
    expect(await page.getByTestId('security-policy-form').locator('select[name=block_pulls_at_severity]').inputValue()).toBe('High');
    await page.screenshot({ path: join(shots, '2-security-policy.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });
});
