import type { TokenService } from '../auth/token-service';
import type { Config } from '../config/config';
import type { Digest } from '../oci/digest';
import type { ClairLayer } from './clair-client';
import type { ScannerSettings } from './scanner-config';

/**
 * Where Clair fetches layers: Entrepot's own `/v2/<repository>/blobs/<digest>`,
 * at `layer_base_url`, else `base_url`, else loopback and the listen port, with
 * a short-lived token that may only pull that one repository.
 */
export class LayerAccess {
  constructor(
    private readonly config: Pick<Config, 'base_url' | 'host' | 'tls'>,
    private readonly settings: Pick<ScannerSettings, 'layerBaseUrl' | 'layerTokenTtlSeconds'>,
    private readonly tokens: TokenService,
    private readonly listenPort: () => number | null,
  ) {}

  baseUrl(): string {
    if (this.settings.layerBaseUrl) return this.settings.layerBaseUrl;
    if (this.config.base_url) return this.config.base_url.replace(/\/+$/, '');
    const port = this.listenPort();
    if (port === null) throw new Error('the server is not listening yet: layer URLs need its port (or set security_scanner.layer_base_url)');
    const wildcard = this.config.host === '0.0.0.0' || this.config.host === '::' || this.config.host === '';
    const host = wildcard ? '127.0.0.1' : this.config.host.includes(':') ? `[${this.config.host}]` : this.config.host;
    return `${this.config.tls ? 'https' : 'http'}://${host}:${port}`;
  }

  /** One entry per layer, in order; the token is made here and never stored. */
  layers(repositoryName: string, digests: Digest[]): ClairLayer[] {
    const base = this.baseUrl();
    const { token } = this.tokens.issue({ kind: 'scanner' }, [{ type: 'repository', name: repositoryName, actions: ['pull'] }], new URL(base).host, this.settings.layerTokenTtlSeconds);
    return digests.map((digest) => ({
      hash: digest,
      uri: `${base}/v2/${repositoryName}/blobs/${digest}`,
      headers: { Authorization: [`Bearer ${token}`] },
    }));
  }
}
