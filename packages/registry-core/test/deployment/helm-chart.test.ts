/**
 * The Helm chart (deploy/helm/entrepot): `helm lint --strict` and
 * `helm template` with Helm v4 for both modes (the chart-testing values files
 * under ci/), with assertions on the rendered objects: replicas, strategy,
 * volumes, probes, environment, and secrets that reach pods only through
 * secretKeyRef.
 */
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { requireTool, run } from '../../../../testing/tools';

const CHART = join(__dirname, '../../../../deploy/helm/entrepot');
const RELEASE = 'reg';
const FULLNAME = 'reg-entrepot';

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}

interface Probe {
  httpGet: { path: string; port: string };
}

interface Container {
  image: string;
  env: EnvVar[];
  ports: Array<{ name: string; containerPort: number }>;
  startupProbe: Probe;
  livenessProbe: Probe;
  readinessProbe: Probe;
  resources: Record<string, unknown>;
  securityContext: Record<string, unknown>;
  volumeMounts: Array<{ name: string; mountPath: string }>;
}

interface PodSpec {
  containers: Container[];
  volumes: Array<{ name: string; persistentVolumeClaim?: { claimName: string }; emptyDir?: Record<string, unknown> }>;
  securityContext: Record<string, unknown>;
  automountServiceAccountToken: boolean;
  affinity?: Record<string, unknown>;
}

interface DeploymentSpec {
  replicas: number;
  strategy: { type: string; rollingUpdate?: { maxUnavailable: number; maxSurge: number } };
  template: { spec: PodSpec };
}

/** Env entries that carry secrets: they must come from a Secret, never as a literal value. */
const SECRET_ENV = ['ENTREPOT_SECRET_KEY', 'ENTREPOT_BOOTSTRAP_ADMIN', 'ENTREPOT_DATABASE_URL', 'ENTREPOT_REDIS_URL', 'ENTREPOT_S3_ACCESS_KEY', 'ENTREPOT_S3_SECRET_KEY'];

async function helm(args: string[], allowFailure = false) {
  const res = await run(requireTool('helm'), args, { allowFailure, timeoutMs: 60_000 });
  return { code: res.code, stdout: res.stdout.toString(), stderr: res.stderr };
}

async function render(valuesFile: string, extra: string[] = []): Promise<K8sObject[]> {
  const res = await helm(['template', RELEASE, CHART, '--namespace', 'registry', '-f', join(CHART, 'ci', valuesFile), ...extra]);
  return parseAllDocuments(res.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

function find(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

function deployment(objects: K8sObject[]): { spec: DeploymentSpec; container: Container; env: Map<string, EnvVar> } {
  const [dep] = find(objects, 'Deployment');
  const spec = dep.spec as unknown as DeploymentSpec;
  const container = spec.template.spec.containers[0];
  return { spec, container, env: new Map(container.env.map((e) => [e.name, e])) };
}

function expectFromSecret(env: Map<string, EnvVar>, name: string, secret: string, key: string): void {
  expect(env.get(name)).toEqual({ name, valueFrom: { secretKeyRef: { name: secret, key } } });
}

function expectSecretsNotInlined(objects: K8sObject[]): void {
  const { env } = deployment(objects);
  for (const name of SECRET_ENV) {
    const entry = env.get(name);
    if (entry) expect([name, entry.value, entry.valueFrom?.secretKeyRef !== undefined]).toEqual([name, undefined, true]);
  }
}

describe('Helm chart deploy/helm/entrepot', () => {
  it.each(['embedded-values.yaml', 'scale-out-values.yaml'])('passes helm lint --strict with ci/%s', async (values) => {
    const res = await helm(['lint', '--strict', CHART, '-f', join(CHART, 'ci', values)]);
    expect(res.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(`${res.stdout}${res.stderr}`).not.toMatch(/\[(WARNING|ERROR)\]/);
  });

  it('passes helm lint --strict with its default values', async () => {
    const res = await helm(['lint', '--strict', CHART]);
    expect(res.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
  });

  it('renders embedded mode: one replica on a kept PVC, Recreate, probes, the admin from a Secret', async () => {
    const objects = await render('embedded-values.yaml');
    expect(objects.map((o) => o.kind).sort()).toEqual(['Deployment', 'Ingress', 'PersistentVolumeClaim', 'Service', 'ServiceAccount']);
    const { spec, container, env } = deployment(objects);
    expect(spec.replicas).toBe(1);
    expect(spec.strategy.type).toBe('Recreate');
    expect(container.image).toBe('registry.example.com/entrepot:0.1.0');
    expect(container.ports).toEqual([{ name: 'http', containerPort: 5000, protocol: 'TCP' }]);
    expect(container.startupProbe.httpGet).toEqual({ path: '/health/instance', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/health/instance', port: 'http' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/health/endtoend', port: 'http' });
    expect(container.resources).toMatchObject({ requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '1Gi' } });
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(spec.template.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001 });
    expect(spec.template.spec.automountServiceAccountToken).toBe(false);

    expect(env.get('ENTREPOT_DATA_DIR')?.value).toBe('/data');
    expect(env.get('ENTREPOT_BASE_URL')?.value).toBe('https://registry.example.com');
    expect(env.get('PROXY_CACHE_DEFAULT_ORG')?.value).toBe('dockerhub');
    expectFromSecret(env, 'ENTREPOT_BOOTSTRAP_ADMIN', 'entrepot-admin', 'bootstrap-admin');
    // Embedded: no shared backends, and the encryption key is generated on the volume.
    for (const name of ['ENTREPOT_DATABASE_URL', 'ENTREPOT_REDIS_URL', 'ENTREPOT_S3_ENDPOINT', 'ENTREPOT_SECRET_KEY']) expect(env.has(name)).toBe(false);
    expectSecretsNotInlined(objects);

    const [pvc] = find(objects, 'PersistentVolumeClaim');
    expect(pvc.metadata.name).toBe(FULLNAME);
    expect(pvc.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    expect(pvc.spec).toMatchObject({ accessModes: ['ReadWriteOnce'], storageClassName: 'standard', resources: { requests: { storage: '20Gi' } } });
    expect(spec.template.spec.volumes).toContainEqual({ name: 'data', persistentVolumeClaim: { claimName: FULLNAME } });
    expect(container.volumeMounts).toContainEqual({ name: 'data', mountPath: '/data' });

    const [ingress] = find(objects, 'Ingress');
    expect(ingress.spec).toMatchObject({
      ingressClassName: 'nginx',
      tls: [{ secretName: 'registry-example-com-tls', hosts: ['registry.example.com'] }],
      rules: [{ host: 'registry.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: FULLNAME, port: { name: 'http' } } } }] } }],
    });
    expect(ingress.metadata.annotations?.['nginx.ingress.kubernetes.io/proxy-body-size']).toBe('0');
  });

  it('renders scale-out mode: N replicas rolling with no unavailability, shared backends from Secrets, a ServiceMonitor', async () => {
    const objects = await render('scale-out-values.yaml');
    expect(objects.map((o) => o.kind).sort()).toEqual(['Deployment', 'PodDisruptionBudget', 'Secret', 'Service', 'ServiceAccount', 'ServiceMonitor']);
    const { spec, env } = deployment(objects);
    expect(spec.replicas).toBe(3);
    expect(spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    // Replicas are stateless: /data is scratch space, no claim.
    expect(find(objects, 'PersistentVolumeClaim')).toHaveLength(0);
    expect(spec.template.spec.volumes).toContainEqual({ name: 'data', emptyDir: { sizeLimit: '20Gi' } });
    expect(spec.template.spec.affinity).toHaveProperty('podAntiAffinity');

    expectFromSecret(env, 'ENTREPOT_SECRET_KEY', 'entrepot-secret-key', 'secret-key');
    expectFromSecret(env, 'ENTREPOT_BOOTSTRAP_ADMIN', 'entrepot-admin', 'bootstrap-admin');
    expectFromSecret(env, 'ENTREPOT_DATABASE_URL', 'entrepot-database', 'database-url');
    // Given inline in the values: stored in the chart's own Secret, read from there.
    expectFromSecret(env, 'ENTREPOT_REDIS_URL', `${FULLNAME}-connections`, 'redis-url');
    expectFromSecret(env, 'ENTREPOT_S3_ACCESS_KEY', 'entrepot-s3', 'access-key');
    expectFromSecret(env, 'ENTREPOT_S3_SECRET_KEY', 'entrepot-s3', 'secret-key');
    expect(env.get('ENTREPOT_S3_ENDPOINT')?.value).toBe('minio.storage.svc');
    expect(env.get('ENTREPOT_S3_PORT')?.value).toBe('9000');
    expect(env.get('ENTREPOT_S3_USE_SSL')?.value).toBe('false');
    expect(env.get('ENTREPOT_S3_BUCKET')?.value).toBe('entrepot');
    expectSecretsNotInlined(objects);

    const [secret] = find(objects, 'Secret');
    expect(secret.metadata.name).toBe(`${FULLNAME}-connections`);
    expect(Object.keys(secret.data ?? {})).toEqual(['redis-url']);
    expect(Buffer.from(secret.data!['redis-url'], 'base64').toString()).toBe('redis://redis.registry.svc:6379');

    const [monitor] = find(objects, 'ServiceMonitor');
    expect(monitor.metadata.labels?.release).toBe('prometheus');
    expect(monitor.spec).toMatchObject({ endpoints: [{ port: 'http', path: '/metrics', interval: '30s' }] });
    const [pdb] = find(objects, 'PodDisruptionBudget');
    expect(pdb.spec).toMatchObject({ maxUnavailable: 1 });
  });

  it('keeps values given inline out of the pod spec', async () => {
    const objects = await render('scale-out-values.yaml', [
      '--set', 'database.existingSecret=,database.url=mysql://entrepot:db-pass-41@db:3306/entrepot',
      '--set', 's3.existingSecret=,s3.accessKey=AKIAINLINE,s3.secretKey=s3-secret-42',
    ]);
    const pods = JSON.stringify(find(objects, 'Deployment'));
    for (const secret of ['db-pass-41', 'AKIAINLINE', 's3-secret-42', 'redis.registry.svc']) expect([secret, pods.includes(secret)]).toEqual([secret, false]);
    const { env } = deployment(objects);
    expectFromSecret(env, 'ENTREPOT_DATABASE_URL', `${FULLNAME}-connections`, 'database-url');
    expectFromSecret(env, 'ENTREPOT_S3_SECRET_KEY', `${FULLNAME}-connections`, 'secret-key');
    const [secret] = find(objects, 'Secret');
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(['access-key', 'database-url', 'redis-url', 'secret-key']);
  });

  it('refuses values that cannot work, with a message that says what is missing', async () => {
    const badMode = await helm(['template', RELEASE, CHART, '--set', 'mode=cluster'], true);
    expect(badMode.code).not.toBe(0);
    expect(badMode.stderr).toMatch(/values don't meet the specifications of the schema|mode/);
    const noBackends = await helm(['template', RELEASE, CHART, '--set', 'mode=scale-out'], true);
    expect(noBackends.code).not.toBe(0);
    expect(noBackends.stderr).toMatch(/secretKey|existingSecret/);
    const noKey = await helm(['template', RELEASE, CHART, '-f', join(CHART, 'ci', 'scale-out-values.yaml'), '--set', 'secretKey.existingSecret='], true);
    expect(noKey.code).not.toBe(0);
    expect(noKey.stderr).toContain('secretKey');
  });
});
