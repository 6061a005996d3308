/**
 * The cache settings' signature policy and a tag's referrers in a real
 * browser (Debian chromium, playwright-core), against a real upstream where
 * real cosign signed an image and real oras attached an SBOM to it. Needs a
 * built UI (`npm run build -w @entrepot/web-ui`).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startCacheFixture, type CacheFixture } from '../../proxy-cache/test/e2e/cache-fixture';
import { Cosign, Oras } from '../../proxy-cache/test/referrers/artifact-clients';
import { ADMIN_PASSWORD, ADMIN_USER } from '../../../testing/entrepot-instance';
import { createOciImage, pushImage, skopeoCopyOut } from '../../../testing/oci-images';

const DIST = resolve(__dirname, '../dist');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const ORG = 'signedhub';
const SBOM_TYPE = 'application/spdx+json';

describe('referrers and the signature policy in the web UI (chromium)', () => {
  let fx: CacheFixture;
  let browser: Browser;
  let page: Page;
  let publicKey: string;
  let sbom: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(join(DIST, 'index.html'))) throw new Error(`${DIST}/index.html is missing: run npm run build -w @entrepot/web-ui before this test`);
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/ci/setup.sh`);
    fx = await startCacheFixture({ entrepot: { overrides: { web_ui_dir: DIST } } });
    const home = join(fx.work, 'home');
    mkdirSync(home);
    const image = await createOciImage(join(fx.work, 'app'), { tag: '2.0', layerCount: 1, layerSize: 30_000 });
    const digest = await pushImage(image.layoutDir, '2.0', fx.upstream.ref('library/app', '2.0'), { creds: fx.upstream.creds! });
    const unsignedImage = await createOciImage(join(fx.work, 'plain'), { tag: '2.0', layerCount: 1, layerSize: 30_000, seed: 'plain' });
    await pushImage(unsignedImage.layoutDir, '2.0', fx.upstream.ref('library/plain', '2.0'), { creds: fx.upstream.creds! });
    const cosign = new Cosign(home);
    const keys = await cosign.generateKeyPair('ui');
    publicKey = readFileSync(keys.pub, 'utf8');
    await cosign.login(fx.upstream.host, fx.upstream.credentials!);
    await cosign.sign(fx.upstream.ref('library/app', digest), keys.key);
    writeFileSync(join(fx.work, 'sbom.spdx.json'), '{"spdxVersion":"SPDX-2.3"}');
    sbom = await new Oras(home).attach(fx.upstream.ref('library/app', '2.0'), 'sbom.spdx.json', SBOM_TYPE, fx.work, fx.upstream.credentials!);
    await fx.createCacheOrg(ORG, { expiration_s: 3600 });

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
    page = await (await browser.newContext({ viewport: { width: 1360, height: 900 } })).newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(fx.entrepot.url);
    await page.locator('input[name=username]').fill(ADMIN_USER);
    await page.locator('input[name=password]').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Organizations' }).waitFor();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await fx?.stop();
  });

  it('sets require_signature with a cosign key in the cache settings', async () => {
    await page.goto(`${fx.entrepot.url}/organization/${ORG}/proxycache`);
    const form = page.getByTestId('cache-form');
    await form.locator('input[name=require_signature]').check();
    await form.locator('textarea[name=signature_public_keys]').fill(publicKey);
    await page.getByTestId('save-cache').click();
    await page.getByTestId('signature-policy').getByText('signatures required').waitFor();
    const saved = await fx.entrepot.api('GET', `/organization/${ORG}/proxycache`);
    expect(saved.body).toMatchObject({ require_signature: true, signature_public_keys: [publicKey.trim()] });
    // The policy is in force: an unsigned image is refused.
    await expect(skopeoCopyOut(`${fx.entrepot.host}/${ORG}/library/plain:2.0`, join(fx.work, 'plain-out'), { creds: `${ADMIN_USER}:${ADMIN_PASSWORD}` })).rejects.toThrow(/require_signature/);
  });

  it("lists a tag's referrers with type, digest and size, and shows it verified", async () => {
    await skopeoCopyOut(`${fx.entrepot.host}/${ORG}/library/app:2.0`, join(fx.work, 'app-out'), { creds: `${ADMIN_USER}:${ADMIN_PASSWORD}` });
    await page.goto(`${fx.entrepot.url}/repository/${ORG}/library/app`);
    const row = page.locator('[data-testid=tag-list] tr[data-key="2.0"]');
    await row.getByTestId('show-referrers').click();
    const panel = page.getByTestId('referrers-panel');
    await panel.getByTestId('signature-state').getByText('signature verified').waitFor();
    const cells = await panel.locator('[data-testid=referrer-list] tr[data-key]').first().locator('td').allInnerTexts();
    expect(cells[0]).toBe(SBOM_TYPE);
    expect(sbom.startsWith(cells[1])).toBe(true);
    expect(cells[2]).toMatch(/B$/);
    expect(pageErrors).toEqual([]);
  });
});
