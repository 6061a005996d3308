/**
 * Scenario 10: Entrepot scale-out with 1, 2 and 3 replicas behind nginx (the
 * deployment of docs/scale-out.md, built by the scale-out tests' harness):
 * cold herd wall time and upstream GETs for one new layer, warm blob
 * throughput through nginx, and the replicas' CPU seconds per GiB served.
 * On one machine the replicas share its cores, so throughput does not grow
 * with them; CPU per GiB is what carries over to replicas on separate machines.
 */
import { readFileSync } from 'node:fs';
import { LoadBalancedCluster, ORG } from '../packages/proxy-cache/test/scale-out/load-balanced-cluster';
import type { UpstreamRegistry } from '../testing/upstream-registry';
import { curl, expectOk } from './lib/curl';
import { MANIFEST_ACCEPT, buildAndPush } from './lib/images';
import { MiB, log, now } from './lib/util';
import { wrk } from './lib/wrk';

export const S10 = '10. Scale-out: replicas behind nginx';

export interface ScaleOutSizes {
  layer: number;
  herdClients: number;
  wrkSeconds: number;
  wrkConnections: number;
}

interface Row {
  replicas: number;
  herdWallS: number;
  upstreamGets: number;
  warmMiBps: number;
  cpuSecondsPerGiB: number;
  cpuShares: string;
}

/** User + system CPU seconds a process used so far (/proc/<pid>/stat, clock ticks of 1/100 s). */
function cpuSeconds(pid: number | undefined): number {
  if (!pid) return NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function measure(upstream: UpstreamRegistry, workDir: string, replicas: number, s: ScaleOutSizes): Promise<Row> {
  const cluster = await LoadBalancedCluster.start(upstream.url, replicas);
  try {
    const auth = `Authorization: ${cluster.replicas[0].process.adminAuth}`;
    const img = await buildAndPush(upstream, workDir, `library/scaleout${replicas}-${Date.now()}`, [s.layer]);
    const manifest = await curl([`${cluster.url}/v2/${ORG}/${img.repo}/manifests/${img.tag}`], { headers: [MANIFEST_ACCEPT, auth] });
    expectOk(manifest, [img.manifest.length], 'manifest');
    upstream.resetLog();
    const url = `${cluster.url}/v2/${ORG}/${img.repo}/blobs/${img.largest.digest}`;
    const t0 = now();
    const herd = await curl(Array.from({ length: s.herdClients }, () => url), { headers: [auth], parallel: s.herdClients });
    const herdWallS = (now() - t0) / 1000;
    expectOk(herd, Array.from({ length: s.herdClients }, () => img.largest.size), 'cold herd');
    const upstreamGets = (await upstream.settledRequests()).filter((r) => r.method === 'GET' && r.path.endsWith(img.largest.digest)).length;
    // The owner stores the blob after its clients have it: warm reads start from storage.
    await new Promise((r) => setTimeout(r, 3000));
    const before = cluster.replicas.map((r) => cpuSeconds(r.process.pid));
    // Whole blobs per request: enough time for many to complete, whatever the layer size.
    const warm = await wrk(url, { headers: [auth], connections: s.wrkConnections, durationS: Math.max(10, s.wrkSeconds), scratchDir: workDir });
    const used = cluster.replicas.map((r, i) => cpuSeconds(r.process.pid) - before[i]);
    const gib = (warm.requests * img.largest.size) / 2 ** 30;
    const total = used.reduce((a, b) => a + b, 0);
    return {
      replicas,
      herdWallS,
      upstreamGets,
      warmMiBps: (warm.rps * img.largest.size) / MiB,
      cpuSecondsPerGiB: total / gib,
      cpuShares: used.map((u) => `${Math.round((100 * u) / total)} %`).join(' / '),
    };
  } finally {
    await cluster.stop();
  }
}

/** Runs the table for 1, 2 and 3 replicas; returns its markdown. */
export async function scaleOutTable(upstream: UpstreamRegistry, workDir: string, s: ScaleOutSizes): Promise<string> {
  const rows: Row[] = [];
  for (const replicas of [1, 2, 3]) {
    log(`${S10}: ${replicas} replica(s)`);
    rows.push(await measure(upstream, workDir, replicas, s));
  }
  const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : '–');
  return [
    `Layer ${s.layer / MiB} MiB; cold herd of ${s.herdClients} clients through nginx; warm: wrk ${s.wrkConnections} connections × ${Math.max(10, s.wrkSeconds)} s on the same blob through nginx.`,
    '',
    '| replicas | cold herd wall time (s) | upstream GETs for the layer | warm throughput (MiB/s) | replica CPU-s per GiB served | CPU share per replica |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.replicas} | ${fmt(r.herdWallS)} | ${r.upstreamGets} | ${fmt(r.warmMiBps, 0)} | ${fmt(r.cpuSecondsPerGiB, 2)} | ${r.cpuShares} |`),
    '',
  ].join('\n');
}
