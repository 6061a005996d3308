export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

export const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaType.OciIndex, MediaType.DockerManifestList]);
export const IMAGE_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaType.OciManifest, MediaType.DockerManifest]);
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([...INDEX_MEDIA_TYPES, ...IMAGE_MEDIA_TYPES]);

/** Media types we ask upstreams for, in preference order. */
export const ACCEPTED_MANIFEST_TYPES = [
  MediaType.OciIndex,
  MediaType.OciManifest,
  MediaType.DockerManifestList,
  MediaType.DockerManifest,
].join(', ');

/** 4 MiB, the limit distribution-spec suggests registries accept at least. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
