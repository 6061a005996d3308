import { allowsStaleServe, upstreamFailureOf } from '../upstream/upstream-failure';

/**
 * Whether a failure lets cached content be served past its staleness period
 * (stale-if-error): upstream outages, timeouts, 5xx, 429 and refused
 * credentials do; "does not exist" and our own errors do not.
 */
export function mayServeStale(err: unknown): boolean {
  const failure = upstreamFailureOf(err);
  return failure !== null && allowsStaleServe(failure);
}
