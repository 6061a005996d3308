/**
 * A real lazy-pulling client through Entrepot: AWS's SOCI snapshotter
 * (soci-snapshotter-grpc v0.16.1) behind containerd, pulling an image whose
 * SOCI index was made with the `soci` CLI, then running a container that reads
 * 4 KiB in the middle of a 48 MiB file. The layer comes through a relay that
 * gives each connection 2 MB/s, so Entrepot's background fill of the layer
 * takes over 25 s: the container's read is answered from ranged GETs (each on
 * its own connection) while that fill still runs.
 * Tools: scripts/ci/setup.sh (soci, soci-snapshotter-grpc, soci-pull, and a
 * containerd 2 that forwards namespaces to snapshotter plugins), runc, /dev/fuse.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, mkdirSync, openSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { storedBlob } from '../faults/fault-fixture';
import { startLazyFixture, type LazyFixture } from './lazy-fixture';
import { eventually } from '../../../../testing/tools';

const run = promisify(execFile);
const TOOLS = process.env.ENTREPOT_TOOLS_DIR ?? '/var/cache/entrepot-tools';
const BIN = join(TOOLS, 'bin');
const MiB = 1024 * 1024;
/** Where the container reads (`dd bs=4096 skip=5000`): well inside the layer, far from its start. */
const READ_AT = 5000 * 4096;

interface Image {
  layout: string;
  layer: string;
  expectedMd5: string;
}

/** An OCI layout: one gzip layer holding busybox and /data/big.bin (random), the container reading 4 KiB of it. */
async function buildImage(dir: string, bigBytes: number): Promise<Image> {
  const root = join(dir, 'rootfs');
  for (const d of ['bin', 'data', 'tmp']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  symlinkSync('busybox', join(root, 'bin/sh'));
  const big = randomBytes(bigBytes);
  writeFileSync(join(root, 'data/big.bin'), big);
  const { stdout: tar } = await run('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', root, '-cf', '-', '.'], { encoding: 'buffer', maxBuffer: 2 * bigBytes });
  const layout = join(dir, 'layout');
  mkdirSync(join(layout, 'blobs/sha256'), { recursive: true });
  const put = (data: Buffer): { digest: string; size: number } => {
    const hex = createHash('sha256').update(data).digest('hex');
    writeFileSync(join(layout, 'blobs/sha256', hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };
  const layer = put(gzipSync(tar, { level: 1 }));
  const config = put(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Entrypoint: ['/bin/busybox'], Cmd: ['sh', '-c', `dd if=/data/big.bin bs=4096 count=1 skip=${READ_AT / 4096} 2>/dev/null | md5sum`] },
        rootfs: { type: 'layers', diff_ids: [`sha256:${createHash('sha256').update(tar).digest('hex')}`] },
      }),
    ),
  );
  const manifest = put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
      }),
    ),
  );
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }] }),
  );
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return { layout, layer: layer.digest, expectedMd5: createHash('md5').update(big.subarray(READ_AT, READ_AT + 4096)).digest('hex') };
}

/** A daemon of the test, its output in a log file. */
function daemon(cmd: string, args: string[], log: string): ChildProcess {
  const out = openSync(log, 'w');
  const child = spawn(cmd, args, { stdio: ['ignore', out, out] });
  closeSync(out);
  return child;
}

async function stopDaemon(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

describe('the SOCI snapshotter pulling lazily through Entrepot', () => {
  let lf: LazyFixture;
  let work: string;
  let containerd: ChildProcess | undefined;
  let soci: ChildProcess | undefined;

  beforeAll(async () => {
    lf = await startLazyFixture({ fill_connections: 1 });
    work = mkdtempSync(join(tmpdir(), 'entrepot-soci-'));
  });

  afterAll(async () => {
    await stopDaemon(containerd);
    await stopDaemon(soci);
    // FUSE mounts of the snapshotter outlive it until unmounted.
    const { stdout } = await run('sh', ['-c', `grep ' ${work}' /proc/mounts | cut -d' ' -f2 || true`]);
    for (const mount of stdout.split('\n').filter(Boolean).reverse()) await run('umount', ['-l', mount]).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
    await lf?.stop();
  });

  it('starts a container whose first file read is answered before the layer is cached', async () => {
    const relay = await lf.cacheOrg('soci', 'per-connection', 2 * 1000 * 1000);
    expect((await lf.fx.entrepot.api('PUT', '/organization/soci', { is_public: true })).status).toBe(200);

    // The image and its SOCI index (index manifest v2, bound to the image by an annotation), pushed upstream.
    const image = await buildImage(work, 48 * MiB);
    const converted = join(work, 'converted');
    await run(join(BIN, 'soci'), ['convert', '--standalone', '--format', 'oci-dir', '--min-layer-size', '0', image.layout, converted]);
    const upstreamHost = new URL(lf.fx.upstream.url).host;
    await run('skopeo', ['copy', '--all', '--dest-tls-verify=false', `oci:${converted}`, `docker://${upstreamHost}/library/lazyapp:latest`]);

    // containerd with the SOCI snapshotter as a proxy plugin; the snapshotter reaches Entrepot over plain HTTP.
    const host = new URL(lf.fx.entrepot.url).host;
    const sock = join(work, 'containerd.sock');
    const sociSock = join(work, 'soci.sock');
    writeFileSync(
      join(work, 'containerd.toml'),
      [
        'version = 3',
        `root = "${work}/ctd-root"`,
        `state = "${work}/ctd-state"`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime"]',
        '[grpc]',
        `  address = "${sock}"`,
        '[proxy_plugins.soci]',
        '  type = "snapshot"',
        `  address = "${sociSock}"`,
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(work, 'soci.toml'),
      [`[resolver.host."${host}"]`, `  [[resolver.host."${host}".mirrors]]`, `    host = "http://${host}"`, '    insecure = true', '[background_fetch]', '  disable = true', ''].join('\n'),
    );
    soci = daemon(join(BIN, 'soci-snapshotter-grpc'), ['--address', sociSock, '--root', join(work, 'soci-root'), '--config', join(work, 'soci.toml')], join(work, 'soci.log'));
    containerd = daemon(join(BIN, 'containerd2'), ['--config', join(work, 'containerd.toml')], join(work, 'containerd.log'));
    const ctr = (...args: string[]): Promise<{ stdout: string }> => run(join(BIN, 'ctr2'), ['-a', sock, '-n', 'entrepot', ...args]);
    await eventually(
      async () => {
        const { stdout } = await ctr('plugins', 'ls').catch(() => ({ stdout: '' }));
        return /io\.containerd\.snapshotter\.v1\s+soci\s.*ok/.test(stdout);
      },
      30_000,
      'the soci snapshotter plugin',
    );
    relay.resetLog();

    const ref = `${host}/soci/library/lazyapp:latest`;
    await run(join(BIN, 'soci-pull'), [sock, 'entrepot', ref]);
    // The layer is mounted lazily (FUSE), not downloaded by the pull.
    const { stdout: mounts } = await run('cat', ['/proc/mounts']);
    expect(mounts.split('\n').filter((l) => l.includes(join(work, 'soci-root')) && /fuse/.test(l)).length).toBeGreaterThanOrEqual(1);

    const { stdout } = await ctr('run', '--rm', '--snapshotter', 'soci', ref, 'lazy-read');
    const readAt = Date.now();
    expect(stdout.trim().split(/\s+/)[0]).toBe(image.expectedMd5);

    // The read was answered while the layer was still being filled: not stored yet, its whole GET still running.
    expect(await storedBlob(lf.fx, image.layer)).toBeNull();
    const layerGets = relay.requests().filter((r) => r.method === 'GET' && r.path.endsWith(image.layer));
    expect(layerGets.filter((r) => r.status === 206).length).toBeGreaterThanOrEqual(1);
    const whole = layerGets.filter((r) => r.range === undefined);
    expect(whole).toHaveLength(1);
    expect(whole[0].endedAt === 0 || whole[0].endedAt > readAt).toBe(true);

    // The background fill completes and verifies.
    await eventually(async () => (await storedBlob(lf.fx, image.layer)) !== null, 60_000);
    // Figures for the reader, not assertions.
    console.log(`SOCI: the container's read done ${readAt - whole[0].startedAt} ms after the layer's fill began; ${layerGets.length - 1} ranged GETs for the layer by then`);
  });
});
