import { dirname, join } from 'node:path';

/**
 * V8 flags Entrepot's process is meant to run with, as its launcher passes
 * them (SERVER_LAUNCHER; README.md in this folder). V8 counts the fresh 64 KiB
 * buffer of every socket read against the old generation's limit; when that
 * limit sits only a few dozen megabytes above the live heap, a fill or an S3
 * read starts a full garbage collection every few dozen megabytes. The initial
 * size is also the floor the limit falls back to after the idle collection
 * (an idle mutator gets the smallest growth factor), so it must leave room
 * above scale-out's ~40 MB live heap, not only embedded's ~25 MB. Node refuses
 * the flag in NODE_OPTIONS and V8 ignores it once the heap exists, so it
 * belongs on the command line.
 */
export const NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128'];

/**
 * The shell script `npm start` runs, from the repository root: Node with
 * NODE_FLAGS. Benchmarks and process-level tests start Entrepot through it so
 * they measure what operators run.
 */
export const SERVER_LAUNCHER = 'packages/registry-core/bin/entrepot-server';

/** What to spawn to start Entrepot through its launcher with a given Node binary (first on PATH). */
export function launcherSpawn(repoRoot: string, nodePath: string, env: NodeJS.ProcessEnv): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  return { command: '/bin/sh', args: [join(repoRoot, SERVER_LAUNCHER)], env: { ...env, PATH: `${dirname(nodePath)}:${env.PATH ?? ''}` } };
}

/** The flags of NODE_FLAGS that `execArgv` does not set (with any value). */
export function missingNodeFlags(execArgv: readonly string[]): string[] {
  return NODE_FLAGS.filter((flag) => {
    const name = flag.split('=')[0];
    return !execArgv.some((arg) => arg === name || arg.startsWith(`${name}=`));
  });
}
