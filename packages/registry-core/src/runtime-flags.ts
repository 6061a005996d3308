/**
 * V8 flags Entrepot's process is meant to run with, as `npm start` passes them
 * (package.json; README, "Configuration"). Without a higher initial old-space
 * limit, the fresh 64 KiB buffer of every socket read starts a full garbage
 * collection every few dozen megabytes a fill receives. Node refuses the flag
 * in NODE_OPTIONS and V8 ignores it once the heap exists, so it belongs on the
 * command line.
 */
export const NODE_FLAGS: readonly string[] = ['--initial-old-space-size=64'];

/** The flags of NODE_FLAGS that `execArgv` does not set (with any value). */
export function missingNodeFlags(execArgv: readonly string[]): string[] {
  return NODE_FLAGS.filter((flag) => {
    const name = flag.split('=')[0];
    return !execArgv.some((arg) => arg === name || arg.startsWith(`${name}=`));
  });
}
