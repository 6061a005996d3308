/**
 * A real S3-compatible server for storage tests: SeaweedFS (`weed mini`, built
 * and cached by scripts/ci/setup.sh) on loopback ports, with its own data
 * directory and one access/secret key pair. Its S3 API is the one Entrepot's
 * S3 storage driver talks to through the `minio` client. With `tls`, the S3
 * API is served over HTTPS only, with a self-signed certificate made at start
 * (`caFile`, for clients to trust explicitly).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { OutputTail, TempDir, freePorts, requireTool, selfSignedCertificate, sleep, stopProcess, trackChild } from './tools';

export interface S3ServerOptions {
  /** Bucket created at start (default `entrepot-test`). */
  bucket?: string;
  accessKey?: string;
  secretKey?: string;
  /** Milliseconds to wait for readiness (default 60000). */
  startTimeoutMs?: number;
  /** Serve the S3 API over HTTPS with a self-signed certificate for 127.0.0.1 (default false). */
  tls?: boolean;
}

/** Connection settings in the shape of the `minio` client's options. */
export interface S3ConnectionInfo {
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  region: string;
  bucket: string;
  /** With TLS: the PEM file of the server's self-signed certificate, to trust as a CA. */
  caFile?: string;
}

const REGION = 'us-east-1';

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A SeaweedFS S3 gateway on 127.0.0.1 with a private data directory. */
export class S3Server implements S3ConnectionInfo {
  readonly endPoint = '127.0.0.1';
  readonly useSSL: boolean;
  readonly region = REGION;
  readonly port: number;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly bucket: string;
  readonly dataDir: string;
  /** With TLS: the PEM file of the self-signed certificate (also its own CA). */
  readonly caFile?: string;
  /** With TLS: that certificate's PEM text. */
  readonly caCert?: string;

  private child?: ChildProcess;
  private readonly logTail = new OutputTail();

  private constructor(
    private readonly dir: TempDir,
    private readonly ports: number[],
    opts: Required<Omit<S3ServerOptions, 'startTimeoutMs' | 'tls'>>,
    private readonly startTimeoutMs: number,
    caCert?: string,
  ) {
    this.port = ports[0];
    this.useSSL = caCert !== undefined;
    this.caCert = caCert;
    this.caFile = caCert === undefined ? undefined : dir.join('s3-cert.pem');
    this.accessKey = opts.accessKey;
    this.secretKey = opts.secretKey;
    this.bucket = opts.bucket;
    this.dataDir = dir.join('data');
  }

  /** `http://127.0.0.1:PORT` (`https://` with TLS). */
  get url(): string {
    return `${this.useSSL ? 'https' : 'http'}://${this.endPoint}:${this.port}`;
  }

  /** Connection settings (for `new Client(...)` of the minio package, minus `bucket` and `caFile`). */
  connection(): S3ConnectionInfo {
    return {
      endPoint: this.endPoint,
      port: this.port,
      useSSL: this.useSSL,
      accessKey: this.accessKey,
      secretKey: this.secretKey,
      region: this.region,
      bucket: this.bucket,
      ...(this.caFile ? { caFile: this.caFile } : {}),
    };
  }

  static async start(options: S3ServerOptions = {}): Promise<S3Server> {
    requireTool('weed');
    const dir = await TempDir.create('entrepot-s3-');
    try {
      const opts = {
        bucket: options.bucket ?? 'entrepot-test',
        accessKey: options.accessKey ?? `AK${randomBytes(8).toString('hex').toUpperCase()}`,
        secretKey: options.secretKey ?? randomBytes(24).toString('base64url'),
      };
      await mkdir(dir.join('data'), { recursive: true });
      const s3Config = {
        identities: [
          {
            name: 'entrepot-test',
            credentials: [{ accessKey: opts.accessKey, secretKey: opts.secretKey }],
            actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'],
          },
        ],
      };
      await writeFile(dir.join('s3.json'), JSON.stringify(s3Config));
      let caCert: string | undefined;
      if (options.tls) {
        const { certFile } = await selfSignedCertificate(dir.path, 's3');
        caCert = await readFile(certFile, 'utf8');
      }
      // s3, s3 grpc, master, master grpc, volume, volume grpc, filer, filer grpc, admin, admin grpc
      const ports = await freePorts(10);
      const server = new S3Server(dir, ports, opts, options.startTimeoutMs ?? 60_000, caCert);
      await server.spawnProcess();
      return server;
    } catch (err) {
      await dir.remove();
      throw err;
    }
  }

  /** Creates another bucket (no error if it exists and is ours). */
  async createBucket(name: string): Promise<void> {
    const status = await this.signedRequest('PUT', `/${name}`);
    if (status !== 200 && status !== 409) throw new Error(`createBucket(${name}): HTTP ${status}`);
  }

  async bucketExists(name: string): Promise<boolean> {
    const status = await this.signedRequest('HEAD', `/${name}`);
    return status === 200;
  }

  /** True while the server process runs. */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Stops the process, keeping the data. `crash: true` sends SIGKILL instead of a graceful stop. */
  async down(opts: { crash?: boolean } = {}): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child) return;
    if (opts.crash) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGKILL');
        await exited;
      }
    } else {
      await stopProcess(child, 10_000);
    }
  }

  /** Starts the process again after `down()` on the same ports with the same data. */
  async up(): Promise<void> {
    if (this.running) return;
    await this.spawnProcess();
  }

  /** `down()` then `up()`; resolves when the S3 API answers again. */
  async restart(opts: { crash?: boolean } = {}): Promise<void> {
    await this.down(opts);
    await this.up();
  }

  /** Last lines of the server's output, for diagnostics. */
  log(): string {
    return this.logTail.toString();
  }

  /** Kills the server and removes its data. */
  async stop(): Promise<void> {
    await this.down({ crash: true });
    await this.dir.remove();
  }

  private async spawnProcess(): Promise<void> {
    const [s3, s3Grpc, master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, admin, adminGrpc] = this.ports;
    const args = [
      'mini',
      `-dir=${this.dataDir}`,
      '-ip=127.0.0.1',
      '-ip.bind=127.0.0.1',
      `-s3.port=${s3}`,
      `-s3.port.grpc=${s3Grpc}`,
      '-s3.port.iceberg=0',
      '-s3.port.lance=0',
      `-s3.config=${this.dir.join('s3.json')}`,
      `-master.port=${master}`,
      `-master.port.grpc=${masterGrpc}`,
      '-master.telemetry=false',
      `-volume.port=${volume}`,
      `-volume.port.grpc=${volumeGrpc}`,
      `-filer.port=${filer}`,
      `-filer.port.grpc=${filerGrpc}`,
      `-filer.localSocket=${this.dir.join('filer.sock')}`,
      `-s3.localSocket=${this.dir.join('s3.sock')}`,
      '-webdav=false',
      '-admin.ui=false',
      `-admin.port=${admin}`,
      `-admin.port.grpc=${adminGrpc}`,
      '-admin.port.legacy=0',
      `-bucket=${this.bucket}`,
      ...(this.useSSL ? [`-s3.cert.file=${this.dir.join('s3-cert.pem')}`, `-s3.key.file=${this.dir.join('s3-key.pem')}`] : []),
    ];
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!k.startsWith('AWS_') && !k.startsWith('S3_') && !k.startsWith('WEED_')) env[k] = v;
    }
    const child = trackChild(spawn(requireTool('weed'), args, { cwd: this.dir.path, env, stdio: ['ignore', 'pipe', 'pipe'] }));
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => this.logTail.push(d));
    child.stderr?.on('data', (d: Buffer) => this.logTail.push(d));
    const deadline = Date.now() + this.startTimeoutMs;
    let last = 'no attempt';
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        this.child = undefined;
        throw new Error(`weed mini exited (${child.exitCode ?? child.signalCode}):\n${this.logTail.toString()}`);
      }
      try {
        const status = await this.signedRequest('HEAD', `/${this.bucket}`);
        if (status === 200) return;
        last = `HTTP ${status}`;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) {
        await this.down({ crash: true });
        throw new Error(`S3 server not ready after ${this.startTimeoutMs} ms (last: ${last}):\n${this.logTail.toString()}`);
      }
      await sleep(200);
    }
  }

  /** A bodiless AWS SigV4-signed request; resolves with the status code. */
  private signedRequest(method: 'HEAD' | 'PUT' | 'GET', pathName: string): Promise<number> {
    const now = new Date();
    const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    const day = amzDate.slice(0, 8);
    const host = `${this.endPoint}:${this.port}`;
    const payloadHash = sha256Hex('');
    const canonicalUri = pathName
      .split('/')
      .map((s) => encodeURIComponent(s))
      .join('/');
    const signedHeaders = 'host;x-amz-content-sha256;x-amz-date';
    const canonicalRequest = [
      method,
      canonicalUri,
      '',
      `host:${host}\nx-amz-content-sha256:${payloadHash}\nx-amz-date:${amzDate}\n`,
      signedHeaders,
      payloadHash,
    ].join('\n');
    const scope = `${day}/${this.region}/s3/aws4_request`;
    const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
    const signingKey = hmac(hmac(hmac(hmac(`AWS4${this.secretKey}`, day), this.region), 's3'), 'aws4_request');
    const signature = createHmac('sha256', signingKey).update(stringToSign).digest('hex');
    const authorization = `AWS4-HMAC-SHA256 Credential=${this.accessKey}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    const request = this.useSSL ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const req = request(
        {
          ...(this.caCert ? { ca: this.caCert } : {}),
          host: this.endPoint,
          port: this.port,
          method,
          path: canonicalUri,
          timeout: 5000,
          headers: {
            host,
            'x-amz-content-sha256': payloadHash,
            'x-amz-date': amzDate,
            authorization,
            'content-length': '0',
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
  }
}
