/** The upstream registry client of the pull-through cache and the pieces it is made of. */
export { UpstreamClient } from './upstream-client';
export type { UpstreamClientOptions, ManifestDescriptor, ManifestResponse, BlobResponse } from './upstream-client';
export type { TagList } from './upstream-documents';
export type { UpstreamCredentials } from './upstream-auth';
export type { UpstreamOperation, UpstreamResponseInfo } from './http-transport';
export { CircuitBreaker } from './circuit-breaker';
export type { BreakerState, BreakerStateChange, BreakerPermit, CircuitBreakerOptions } from './circuit-breaker';
export { TokenCache, tokenExpiry } from './token-cache';
export { parseWwwAuthenticate, selectChallenge, pullScope } from './auth-challenge';
export type { AuthChallenge, UpstreamChallenge } from './auth-challenge';
export { rateLimitRemaining, viaHasToken } from './response-headers';
export { UpstreamError, upstreamFailureOf, isOutage, allowsStaleServe } from './upstream-failure';
export type { UpstreamFailure, UpstreamFailureKind, TimeoutSettings } from './upstream-failure';
