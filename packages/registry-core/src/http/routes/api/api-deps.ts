import type { Authorizer } from '../../../auth/authenticator';
import type { DbAuthenticator } from '../../../auth/db-authenticator';
import type { AuditLog } from '../../../audit/audit-log';
import type { Config } from '../../../config/config';
import type { Logger } from '../../../logging/logger';
import type { AdminServices } from '../../../services/admin-services';
import type { ContentService } from '../../../services/content-service';
import type { RepositoryService } from '../../../services/repository-service';
import type { Clock } from '../../../services/clock';
import type { Storage } from '../../../storage/blob-store';
import type { HttpHelpers } from '../../http-helpers';
import type { QuotaService } from '../../../services/quota-service';
import type { SecurityScanning } from '../../../scanning/security-scanning';

/** Everything the /api/v1 handlers use. */
export interface ApiDeps {
  config: Config;
  logger: Logger;
  clock: Clock;
  storage: Storage;
  authenticator: DbAuthenticator;
  authorizer: Authorizer;
  repositories: RepositoryService;
  /** Accounts, organizations, robots, permissions, teams, logs and repository statistics. */
  admin: AdminServices;
  content: ContentService;
  audit: AuditLog;
  http: HttpHelpers;
  quotas: QuotaService;
  requestGc(): Promise<void>;
  /** Scan results, summaries and the organizations' pull policy. */
  scanning: SecurityScanning;
}
