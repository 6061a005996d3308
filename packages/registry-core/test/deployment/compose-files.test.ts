/**
 * The compose files of deploy/compose, as Compose (Debian's docker-compose
 * 1.29) reads them: `docker-compose config` resolves and validates each file,
 * and the result is checked (services, volumes, the environment contract,
 * required secrets). image.test.ts starts the embedded one with the built image.
 */
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { requireTool, run } from '../../../../testing/tools';

const COMPOSE_DIR = join(__dirname, '../../../../deploy/compose');

interface ComposeService {
  image: string;
  environment?: Record<string, string>;
  ports?: Array<{ target: number; published: number | string }>;
  /** Compose 1.29 prints the short form, `SOURCE:TARGET:MODE`. */
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}

interface ComposeModel {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** Only what the test sets: no variable of the machine running the test leaks into the model. */
function composeEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, ...vars };
}

async function composeConfig(file: string, vars: Record<string, string>) {
  const res = await run(requireTool('docker-compose'), ['--project-directory', COMPOSE_DIR, '-f', join(COMPOSE_DIR, file), 'config'], {
    env: composeEnv(vars),
    allowFailure: true,
    timeoutMs: 60_000,
  });
  return { code: res.code, model: res.code === 0 ? (parseYaml(res.stdout.toString()) as ComposeModel) : undefined, stderr: res.stderr };
}

const SCALE_OUT_VARS = {
  ENTREPOT_SECRET_KEY: Buffer.alloc(32, 7).toString('base64'),
  MARIADB_PASSWORD: 'db-pass-1',
  S3_ACCESS_KEY: 'entrepot',
  S3_SECRET_KEY: 's3-secret-1',
  ENTREPOT_IMAGE: 'registry.example.com/entrepot:0.1.0',
};

describe('compose files (deploy/compose)', () => {
  it('embedded.yaml: one service with the image, port 5000 and the data volume', async () => {
    const { code, model, stderr } = await composeConfig('embedded.yaml', {});
    expect([code, stderr]).toEqual([0, expect.any(String)]);
    expect(Object.keys(model!.services)).toEqual(['entrepot']);
    const svc = model!.services.entrepot;
    expect(svc.image).toBe('entrepot:local');
    expect(svc.ports).toEqual([expect.objectContaining({ target: 5000, published: 5000 })]);
    expect(svc.volumes).toEqual(['entrepot-data:/data:rw']);
    expect(Object.keys(model!.volumes ?? {})).toEqual(['entrepot-data']);

    const custom = await composeConfig('embedded.yaml', { ENTREPOT_IMAGE: 'registry.example.com/entrepot:0.1.0', ENTREPOT_PORT: '8080', ENTREPOT_BOOTSTRAP_ADMIN: 'admin:pw' });
    expect(custom.model!.services.entrepot.image).toBe('registry.example.com/entrepot:0.1.0');
    expect(custom.model!.services.entrepot.ports).toEqual([expect.objectContaining({ target: 5000, published: 8080 })]);
    expect(custom.model!.services.entrepot.environment).toMatchObject({ ENTREPOT_BOOTSTRAP_ADMIN: 'admin:pw' });
  });

  it('scale-out.yaml: two identical replicas behind nginx on MariaDB, Redis and MinIO', async () => {
    const { code, model, stderr } = await composeConfig('scale-out.yaml', SCALE_OUT_VARS);
    expect([code, stderr]).toEqual([0, expect.any(String)]);
    const services = model!.services;
    expect(Object.keys(services).sort()).toEqual(['entrepot-1', 'entrepot-2', 'mariadb', 'minio', 'nginx', 'redis']);
    expect(services['entrepot-1']).toEqual(services['entrepot-2']);
    const replica = services['entrepot-1'];
    expect(replica.image).toBe(SCALE_OUT_VARS.ENTREPOT_IMAGE);
    expect(replica.environment).toMatchObject({
      ENTREPOT_SECRET_KEY: SCALE_OUT_VARS.ENTREPOT_SECRET_KEY,
      ENTREPOT_DATABASE_URL: 'mysql://entrepot:db-pass-1@mariadb:3306/entrepot',
      ENTREPOT_REDIS_URL: 'redis://redis:6379',
      ENTREPOT_S3_ENDPOINT: 'minio',
      ENTREPOT_S3_PORT: '9000',
      ENTREPOT_S3_USE_SSL: 'false',
      ENTREPOT_S3_ACCESS_KEY: 'entrepot',
      ENTREPOT_S3_SECRET_KEY: 's3-secret-1',
    });
    expect(replica.depends_on).toEqual({
      mariadb: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
      minio: { condition: 'service_healthy' },
    });
    // The database user's password and MinIO's credentials are the ones Entrepot uses.
    expect(services.mariadb.environment).toMatchObject({ MARIADB_USER: 'entrepot', MARIADB_PASSWORD: 'db-pass-1', MARIADB_DATABASE: 'entrepot' });
    expect(services.minio.environment).toMatchObject({ MINIO_ROOT_USER: 'entrepot', MINIO_ROOT_PASSWORD: 's3-secret-1' });
    for (const backend of ['mariadb', 'redis', 'minio']) expect([backend, services[backend].healthcheck?.test.length]).toEqual([backend, expect.any(Number)]);
    // Only nginx is published; it reads the nginx.conf next to the file.
    expect(services.nginx.ports).toEqual([expect.objectContaining({ target: 80, published: 5000 })]);
    expect(services.nginx.volumes).toEqual([`${join(COMPOSE_DIR, 'nginx.conf')}:/etc/nginx/nginx.conf:ro`]);
    for (const name of ['entrepot-1', 'entrepot-2', 'mariadb', 'redis', 'minio']) expect([name, services[name].ports]).toEqual([name, undefined]);
    expect(Object.keys(model!.volumes ?? {}).sort()).toEqual(['mariadb-data', 'minio-data', 'redis-data']);
  });

  it('scale-out.yaml refuses to load without its secrets, naming the missing one', async () => {
    const { ENTREPOT_SECRET_KEY: _omitted, ...withoutKey } = SCALE_OUT_VARS;
    const res = await composeConfig('scale-out.yaml', withoutKey);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('set ENTREPOT_SECRET_KEY');
  });
});
