/** The OCI formats as plugins use them: digests, names, media types, manifests. No state. */
export type { Digest } from './digest';
export { parseDigest, tryParseDigest, digestAlgorithm, digestHex, digestOf, createDigester } from './digest';
export type { Reference } from './names';
export { parseReference, referenceString, validateRepositoryName, isValidTag } from './names';
export { MediaType, ACCEPTED_MANIFEST_TYPES, MAX_MANIFEST_BYTES } from './media-types';
export type { Descriptor, ReferrerDescriptor } from './manifest';
export { parseManifest, isNonDistributable } from './manifest';
