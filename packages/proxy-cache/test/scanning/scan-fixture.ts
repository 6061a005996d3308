import type { Logger } from '../../../registry-core/src/logging/logger';
import { ALPINE_DISTRIBUTION, DEBIAN_DISTRIBUTION } from '../../../../testing/os-images';
import type { ClairServer, VulnerabilityFixture } from '../../../../testing/clair';
import type { TestInstance } from '../../../../testing/entrepot-instance';
import { sleep } from '../../../../testing/tools';

/** The vulnerability data every scanning test loads into its Clair. */
export const VULNERABILITIES: VulnerabilityFixture[] = [
  { updater: 'alpine', name: 'CVE-2099-0001', severity: 'High', packageName: 'busybox', fixedInVersion: '1.36.1-r1', distribution: ALPINE_DISTRIBUTION, link: 'https://security.example.test/CVE-2099-0001' },
  { updater: 'alpine', name: 'CVE-2099-0003', severity: 'Low', packageName: 'musl', fixedInVersion: '1.2.4-r2', distribution: ALPINE_DISTRIBUTION },
  { updater: 'debian', name: 'CVE-2099-0002', severity: 'Critical', packageName: 'openssl', fixedInVersion: '3.0.11-1~deb12u2', distribution: DEBIAN_DISTRIBUTION },
];

export const ALPINE_VULNERABLE = [
  { name: 'busybox', version: '1.36.1-r0' },
  { name: 'musl', version: '1.2.4-r1' },
];
export const ALPINE_FIXED = [
  { name: 'busybox', version: '1.36.1-r1' },
  { name: 'musl', version: '1.2.4-r2' },
];
export const DEBIAN_VULNERABLE = [
  { name: 'openssl', version: '3.0.11-1~deb12u1' },
  { name: 'bash', version: '5.2.15-2+b2' },
];
export const DEBIAN_FIXED = [
  { name: 'openssl', version: '3.0.11-1~deb12u2' },
  { name: 'bash', version: '5.2.15-2+b2' },
];

export interface SecurityVulnerability {
  Name: string;
  Severity: string;
  FixedBy: string;
  Link: string;
  Description: string;
  NamespaceName: string;
  Metadata: Record<string, unknown>;
}
export interface SecurityFeature {
  Name: string;
  Version: string;
  VersionFormat: string;
  AddedBy: string;
  Vulnerabilities: SecurityVulnerability[];
}
export interface SecurityAnswer {
  status: string;
  reason?: string;
  data: { Layer: { Name: string; IndexedByVersion: number; Features: SecurityFeature[] } } | null;
}

/** Scanner environment for an Entrepot using `clair`. */
export function scannerEnv(clair: ClairServer, extra: Record<string, string> = {}): Record<string, string> {
  return {
    FEATURE_SECURITY_SCANNER: 'true',
    SECURITY_SCANNER_V4_ENDPOINT: clair.url,
    ...(clair.psk ? { SECURITY_SCANNER_V4_PSK: clair.psk } : {}),
    SECURITY_SCANNER_RESCAN_INTERVAL_SECONDS: '2',
    ...extra,
  };
}

export function securityPath(org: string, repo: string, digest: string, vulnerabilities = true): string {
  return `/repository/${org}/${repo}/manifest/${digest}/security${vulnerabilities ? '?vulnerabilities=true' : ''}`;
}

/** Polls the security endpoint until the status is `status` (other answers, 520 included, keep it polling). */
export async function waitForStatus(instance: TestInstance, path: string, status: string, timeoutMs = 90_000): Promise<SecurityAnswer> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    const res = await instance.api('GET', path);
    last = res.body;
    if (res.status === 200 && (res.body as SecurityAnswer).status === status) return res.body as SecurityAnswer;
    if (Date.now() > deadline) throw new Error(`${path} did not reach ${status} in ${timeoutMs} ms; last answer ${JSON.stringify(last).slice(0, 500)}`);
    await sleep(300);
  }
}

export function vulnerabilitiesOf(answer: SecurityAnswer): Array<SecurityVulnerability & { package: string; version: string; addedBy: string }> {
  return (answer.data?.Layer.Features ?? []).flatMap((f) => f.Vulnerabilities.map((v) => ({ ...v, package: f.Name, version: f.Version, addedBy: f.AddedBy })));
}

/** A logger that keeps every entry as text, to show what is never logged. */
export function capturingLogger(lines: string[] = []): Logger & { lines: string[] } {
  const make = (bound: Record<string, unknown>): Logger => {
    const at = (level: string) => (message: string, meta?: Record<string, unknown>) => {
      lines.push(JSON.stringify({ level, message, ...bound, ...meta }));
    };
    return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), child: (meta) => make({ ...bound, ...meta }) };
  };
  return Object.assign(make({}), { lines });
}

/** Anything shaped like a JWT. */
export const JWT_PATTERN = /eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+/;
