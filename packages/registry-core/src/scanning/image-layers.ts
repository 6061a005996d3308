import type { Digest } from '../oci/digest';
import { isNonDistributable, parseManifest, type Descriptor } from '../oci/manifest';

/** Layer media types Clair unpacks. */
const LAYER_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
]);

const CONFIG_TYPES: ReadonlySet<string> = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

export type LayerPlan = { kind: 'index'; children: Digest[] } | { kind: 'unsupported'; reason: string } | { kind: 'image'; layers: Digest[] };

/** What scanning a stored manifest means: its layers, its children (an index), or nothing Clair can read. */
export function layerPlan(body: Buffer, mediaType: string): LayerPlan {
  const parsed = parseManifest(body, mediaType);
  if (parsed.isIndex) return { kind: 'index', children: parsed.manifests.map((d) => d.digest) };
  const doc = JSON.parse(body.toString('utf8')) as { config?: Descriptor; layers?: Descriptor[] };
  const config = doc.config?.mediaType ?? '';
  if (!CONFIG_TYPES.has(config)) return { kind: 'unsupported', reason: `not a container image (config media type ${config || 'missing'})` };
  const layers = doc.layers ?? [];
  if (layers.length === 0) return { kind: 'unsupported', reason: 'the image has no layers' };
  const foreign = layers.find((l) => isNonDistributable(l));
  if (foreign) return { kind: 'unsupported', reason: `layer ${foreign.digest} is non-distributable` };
  const odd = layers.find((l) => !LAYER_TYPES.has(l.mediaType));
  if (odd) return { kind: 'unsupported', reason: `layer media type ${odd.mediaType} is not supported by the scanner` };
  return { kind: 'image', layers: layers.map((l) => l.digest) };
}
