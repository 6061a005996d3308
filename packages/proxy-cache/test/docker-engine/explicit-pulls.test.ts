/**
 * A real Docker Engine (Debian's docker.io 20.10, its own dockerd) pulls
 * through Entrepot by explicit references: `docker login` with a robot token
 * and with a user, pulls by tag and by digest from a cache organization
 * (explicit `library/` path and the short form), `docker logout`, anonymous
 * pulls of private and public organizations, a robot without permission, a
 * robot whose read comes from a default permission, and a multi-arch index of
 * which Docker fetches only its own platform.
 */
import { CACHE_ORG, DEV_PASSWORD, DEV_USER, IDLE_ROBOT, PUBLIC_ORG, PULLER, startEngineFixture, upstreamGets, type EngineFixture } from './engine-fixture';

// Every docker pull through a vfs-backed daemon copies whole layers: room for busy machines.
jest.setTimeout(300_000);

describe('Docker Engine pulls explicit references through Entrepot', () => {
  let fx: EngineFixture;

  beforeAll(async () => {
    fx = await startEngineFixture();
  }, 180_000);

  afterAll(async () => {
    await fx?.stop();
  }, 120_000);

  const ref = (path: string) => `${fx.registry}/${path}`;

  it('logs in with a robot token and pulls by tag, by digest and by the library/ short form, with the upstream digest', async () => {
    const login = await fx.engine.login(fx.registry, PULLER, fx.pullerToken);
    expect(login.stdout.toString()).toContain('Login Succeeded');

    expect(await fx.engine.pull(ref(`${CACHE_ORG}/library/app:v1`))).toBe(fx.app.digest);
    expect(await fx.engine.repoDigests(ref(`${CACHE_ORG}/library/app:v1`))).toContain(`${ref(`${CACHE_ORG}/library/app`)}@${fx.app.digest}`);
    expect(await fx.engine.pull(ref(`${CACHE_ORG}/library/app@${fx.app.digest}`))).toBe(fx.app.digest);
    // For Docker Hub a single-segment name means library/<name>: the same image.
    expect(await fx.engine.pull(ref(`${CACHE_ORG}/app:v1`))).toBe(fx.app.digest);
    // The image runs its layers' content through Docker's own checks: it is there, with its config.
    const inspect = await fx.engine.docker(['image', 'inspect', '--format', '{{.Os}}/{{.Architecture}} {{len .RootFS.Layers}}', ref(`${CACHE_ORG}/app:v1`)]);
    expect(inspect.stdout.toString().trim()).toBe('linux/amd64 2');
    // Each blob came from the upstream once, whatever the number of pulls.
    for (const blob of [fx.app.image.manifests[0].config.digest, ...fx.app.image.manifests[0].layers.map((l) => l.digest)]) {
      expect([blob, await upstreamGets(fx.upstream, blob)]).toEqual([blob, 1]);
    }
  });

  it('logs in with a user that is a member and pulls', async () => {
    await fx.engine.docker(['logout', fx.registry]);
    await fx.engine.login(fx.registry, DEV_USER, DEV_PASSWORD);
    await fx.engine.removeImages(ref(`${CACHE_ORG}/library/app:v1`));
    expect(await fx.engine.pull(ref(`${CACHE_ORG}/library/app:v1`))).toBe(fx.app.digest);
  });

  it('after docker logout refuses an anonymous pull of the private cache with "pull access denied" and serves the public one', async () => {
    const logout = await fx.engine.docker(['logout', fx.registry]);
    expect(logout.stdout.toString()).toContain(`Removing login credentials for ${fx.registry}`);
    const denied = await fx.engine.tryPull(ref(`${CACHE_ORG}/library/app:v1`));
    expect(denied.code).not.toBe(0);
    expect(denied.output).toContain(`pull access denied for ${ref(`${CACHE_ORG}/library/app`)}`);
    expect(denied.output).not.toMatch(/500|Internal Server Error/);

    expect(await fx.engine.pull(ref(`${PUBLIC_ORG}/app:v1`))).toBe(fx.app.digest);
  });

  it('answers a robot without permission with "denied", not a server error', async () => {
    await fx.engine.login(fx.registry, IDLE_ROBOT, fx.idleToken);
    const res = await fx.engine.tryPull(ref(`${CACHE_ORG}/library/app:v1`));
    expect(res.code).not.toBe(0);
    expect(res.output).toMatch(/denied/);
    expect(res.output).not.toMatch(/500|Internal Server Error|unknown: /);
    await fx.engine.docker(['logout', fx.registry]);
  });

  it('lets a robot whose read comes from a default permission pull a repository the cache had not created yet', async () => {
    const before = await fx.entrepot.api('GET', `/repository/${CACHE_ORG}/library/other`);
    expect(before.status).toBe(404);
    await fx.engine.login(fx.registry, PULLER, fx.pullerToken);
    expect(await fx.engine.pull(ref(`${CACHE_ORG}/library/other:v1`))).toBe(fx.other.digest);
    const perms = await fx.entrepot.api('GET', `/repository/${CACHE_ORG}/library/other/permissions/user/`);
    expect(perms.body).toMatchObject({ permissions: { [PULLER]: { role: 'read' } } });
    await fx.engine.docker(['logout', fx.registry]);
  });

  it('pulls only its own platform of a multi-arch index', async () => {
    fx.upstream.resetLog();
    expect(await fx.engine.pull(ref(`${PUBLIC_ORG}/multi:v1`))).toBe(fx.multi.digest);
    const platform = await fx.engine.docker(['image', 'inspect', '--format', '{{.Os}}/{{.Architecture}}', ref(`${PUBLIC_ORG}/multi:v1`)]);
    expect(platform.stdout.toString().trim()).toBe('linux/amd64');
    const [amd64, arm64] = fx.multi.image.manifests;
    expect([amd64.platform.architecture, arm64.platform.architecture]).toEqual(['amd64', 'arm64']);
    for (const digest of [amd64.digest, amd64.config.digest, ...amd64.layers.map((l) => l.digest)]) {
      expect([digest, await upstreamGets(fx.upstream, digest)]).toEqual([digest, 1]);
    }
    for (const digest of [arm64.digest, arm64.config.digest, ...arm64.layers.map((l) => l.digest)]) {
      expect([digest, await upstreamGets(fx.upstream, digest)]).toEqual([digest, 0]);
    }
  });
});
