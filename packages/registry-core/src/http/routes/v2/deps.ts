import type { Authenticator, Authorizer } from '../../../auth/authenticator';
import type { AuditLog } from '../../../audit/audit-log';
import type { Config } from '../../../config/config';
import type { Logger } from '../../../logging/logger';
import type { CoreMetrics } from '../../../metrics/metrics';
import type { PullEvent, WriteGuard } from '../../../plugin/contract';
import type { CatalogService } from '../../../services/catalog-service';
import type { ContentService } from '../../../services/content-service';
import type { NameResolution } from '../../../services/name-resolution';
import type { RegistryService } from '../../../services/registry-service';
import type { RepositoryService } from '../../../services/repository-service';
import type { UploadService } from '../../../services/upload-service';
import type { PullStats } from '../../../services/pull-stats';
import type { SecurityScanning } from '../../../scanning/security-scanning';

/** Everything the /v2 handlers use, passed in by the app assembly. */
export interface RegistryRouteDeps {
  config: Config;
  logger: Logger;
  metrics: CoreMetrics;
  authenticator: Authenticator;
  authorizer: Authorizer;
  names: NameResolution;
  repositories: RepositoryService;
  content: ContentService;
  registry: RegistryService;
  uploads: UploadService;
  writeGuards: readonly WriteGuard[];
  audit: AuditLog;
  catalog: CatalogService;
  pullStats: PullStats;
  /** The organizations' security pull policy. */
  pullPolicy: Pick<SecurityScanning, 'checkPull' | 'countBlocked'>;
  /** Tells plugins what was answered (never throws). */
  observePull(event: PullEvent): void;
}
