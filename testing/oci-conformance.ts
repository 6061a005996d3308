import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireTool, run } from './tools';

export interface ConformanceResult {
  passed: number;
  failed: number;
  skipped: number;
  /** Names of failed tests with their messages, for assertion output. */
  failures: string[];
  resultsDir: string;
}

/**
 * Runs the OCI distribution-spec conformance suite against a registry and
 * reads its JUnit report. `env` holds OCI_* settings (registry, repos,
 * credentials, which APIs to test).
 */
export async function runConformance(env: Record<string, string>, resultsDir: string): Promise<ConformanceResult> {
  const binary = requireTool('oci-conformance');
  await run(binary, [], {
    env: { ...process.env, OCI_TLS: 'disabled', OCI_VERSION: '1.1', OCI_LOG: 'error', OCI_RESULTS_DIR: resultsDir, ...env },
    cwd: resultsDir,
    timeoutMs: 600_000,
    allowFailure: true,
  });
  const junit = await readFile(join(resultsDir, 'junit.xml'), 'utf8');
  const cases = junit.split('<testcase').slice(1);
  const failures: string[] = [];
  let skipped = 0;
  for (const c of cases) {
    const name = /name="([^"]*)"/.exec(c)?.[1] ?? '?';
    const status = /status="([^"]*)"/.exec(c)?.[1] ?? '';
    if (status === 'failure' || status === 'error' || /<failure|<error/.test(c)) {
      const output = /<system-out>([\s\S]*?)<\/system-out>/.exec(c)?.[1] ?? '';
      failures.push(`${name}: ${decodeXml(output).slice(0, 600)}`);
    } else if (status === 'skipped' || status === 'disabled' || /<skipped/.test(c)) skipped++;
  }
  return { passed: cases.length - failures.length - skipped, failed: failures.length, skipped, failures, resultsDir };
}

function decodeXml(text: string): string {
  return text
    .replace(/&#xA;|&#10;/g, ' | ')
    .replace(/&#34;|&quot;/g, '"')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}
