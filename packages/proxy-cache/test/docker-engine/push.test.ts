/**
 * `docker push` from a real Docker Engine: a cache organization refuses it
 * with Entrepot's DENIED message naming the upstream (R-PUSHDENY), a normal
 * organization takes it and `docker pull` gets the same image back.
 */
import { ADMIN_PASSWORD, ADMIN_USER } from '../../../../testing/entrepot-instance';
import { CACHE_ORG, NORMAL_ORG, PUBLIC_ORG, startEngineFixture, type EngineFixture } from './engine-fixture';

// Every docker pull through a vfs-backed daemon copies whole layers: room for busy machines.
jest.setTimeout(300_000);

describe('docker push through Entrepot', () => {
  let fx: EngineFixture;
  let local: string;

  beforeAll(async () => {
    fx = await startEngineFixture();
    // An image to push: the cached one, as Docker stores it.
    local = `${fx.registry}/${PUBLIC_ORG}/app:v1`;
    expect(await fx.engine.pull(local)).toBe(fx.app.digest);
    await fx.engine.login(fx.registry, ADMIN_USER, ADMIN_PASSWORD);
  }, 180_000);

  afterAll(async () => {
    await fx?.stop();
  }, 120_000);

  it('refuses a push into a cache organization with DENIED naming the upstream', async () => {
    const target = `${fx.registry}/${CACHE_ORG}/library/pushed:v1`;
    await fx.engine.docker(['tag', local, target]);
    const res = await fx.engine.docker(['push', target], { allowFailure: true });
    const output = `${res.stdout.toString()}${res.stderr}`;
    expect(res.code).not.toBe(0);
    expect(output).toContain(`denied: organization ${CACHE_ORG} is a pull-through cache of docker.io; pushes are not allowed`);
    expect(output).not.toMatch(/500|Internal Server Error/);
    const repo = await fx.entrepot.api('GET', `/repository/${CACHE_ORG}/library/pushed`);
    expect(repo.status).toBe(404);
  });

  it('pushes into a normal organization, and docker pull gets the same image back', async () => {
    const target = `${fx.registry}/${NORMAL_ORG}/app:v1`;
    await fx.engine.docker(['tag', local, target]);
    const pushed = await fx.engine.docker(['push', target]);
    const m = /v1: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(pushed.stdout.toString());
    expect(m).not.toBeNull();
    const pushedDigest = m![1];
    const tags = await fx.entrepot.api('GET', `/repository/${NORMAL_ORG}/app/tag/`);
    expect(tags.body).toMatchObject({ tags: [{ name: 'v1', manifest_digest: pushedDigest }] });

    // Gone from the engine, then back from Entrepot with the same content.
    const imageId = (await fx.engine.docker(['image', 'inspect', '--format', '{{.Id}}', target])).stdout.toString().trim();
    await fx.engine.removeImages(target, local);
    expect((await fx.engine.docker(['image', 'inspect', target], { allowFailure: true })).code).not.toBe(0);
    expect(await fx.engine.pull(target)).toBe(pushedDigest);
    expect((await fx.engine.docker(['image', 'inspect', '--format', '{{.Id}}', target])).stdout.toString().trim()).toBe(imageId);
  });
});
