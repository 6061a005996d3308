import { requireTool, run, type RunResult } from '../../../../testing/tools';

export interface Login {
  username: string;
  password: string;
}

/**
 * `--username=` and `--password=` as one argument each: a generated password
 * may begin with '-', which a CLI would otherwise read as a flag (cosign
 * rewrites `-p -x…` into the password `--x…`).
 */
function credentialArgs(login?: Login): string[] {
  return login ? [`--username=${login.username}`, `--password=${login.password}`] : [];
}

/** One referrer as `oras discover --format json` prints it (nested referrers omitted). */
export interface DiscoveredReferrer {
  digest: string;
  artifactType?: string;
  mediaType: string;
  size: number;
}

/** The real ORAS CLI against plain-HTTP loopback registries, with a private HOME. */
export class Oras {
  private readonly bin = requireTool('oras');

  constructor(private readonly home: string) {}

  run(args: string[], login?: Login): Promise<RunResult> {
    return run(this.bin, [...args, '--plain-http', ...credentialArgs(login)], { env: { ...process.env, HOME: this.home, DOCKER_CONFIG: this.home }, timeoutMs: 120_000 });
  }

  /** Attaches `file` (with `artifactType`) to `subject`; returns the new referrer's digest. */
  async attach(subject: string, file: string, artifactType: string, cwd: string, login?: Login): Promise<string> {
    const res = await run(this.bin, ['attach', '--plain-http', ...credentialArgs(login), '--artifact-type', artifactType, '--format', 'json', subject, file], {
      env: { ...process.env, HOME: this.home, DOCKER_CONFIG: this.home },
      cwd,
      timeoutMs: 120_000,
    });
    const out = JSON.parse(res.stdout.toString('utf8')) as { digest: string };
    return out.digest;
  }

  /** Plain `oras discover` (no distribution-spec hint), direct referrers only. */
  async discover(subject: string, login?: Login, artifactType?: string): Promise<DiscoveredReferrer[]> {
    const filter = artifactType ? ['--artifact-type', artifactType] : [];
    const res = await this.run(['discover', '--format', 'json', '--depth', '1', ...filter, subject], login);
    const out = JSON.parse(res.stdout.toString('utf8')) as { referrers?: DiscoveredReferrer[] };
    return (out.referrers ?? []).map((r) => ({ digest: r.digest, artifactType: r.artifactType, mediaType: r.mediaType, size: r.size }));
  }
}

/** The real cosign CLI with a private HOME, offline: no transparency log. */
export class Cosign {
  private readonly bin = requireTool('cosign');

  constructor(
    private readonly home: string,
    private readonly keyPassword = 'cosign-test-password',
  ) {}

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, HOME: this.home, DOCKER_CONFIG: this.home, COSIGN_PASSWORD: this.keyPassword, COSIGN_YES: 'true', SIGSTORE_NO_CACHE: 'true', TUF_ROOT: `${this.home}/tuf` };
  }

  run(args: string[], allowFailure = false): Promise<RunResult> {
    return run(this.bin, args, { env: this.env(), cwd: this.home, timeoutMs: 120_000, allowFailure });
  }

  /** `cosign generate-key-pair --output-key-prefix <prefix>`: returns the key files (ECDSA P-256, as cosign generates). */
  async generateKeyPair(prefix: string): Promise<{ key: string; pub: string }> {
    await this.run(['generate-key-pair', '--output-key-prefix', prefix]);
    return { key: `${this.home}/${prefix}.key`, pub: `${this.home}/${prefix}.pub` };
  }

  async login(registry: string, login: Login): Promise<void> {
    await this.run(['login', registry, ...credentialArgs(login)]);
  }

  /** Signs `image` (by digest) with a key, storing the signature in the registry but not in a transparency log. */
  async sign(image: string, key: string): Promise<void> {
    await this.run(['sign', '--yes', '--key', key, '--tlog-upload=false', '--allow-insecure-registry', '--allow-http-registry', image]);
  }

  verify(image: string, pub: string): Promise<RunResult> {
    return this.run(['verify', '--key', pub, '--insecure-ignore-tlog=true', '--allow-insecure-registry', '--allow-http-registry', image], true);
  }
}
