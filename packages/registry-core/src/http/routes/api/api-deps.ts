import type { Authorizer } from '../../../auth/authenticator';
import type { DbAuthenticator } from '../../../auth/db-authenticator';
import type { PasswordHasher } from '../../../auth/passwords';
import type { SecretBox } from '../../../auth/secret-box';
import type { AuditLog } from '../../../audit/audit-log';
import type { Config } from '../../../config/config';
import type { Db } from '../../../db/database';
import type { Logger } from '../../../logging/logger';
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
  db: Db;
  clock: Clock;
  storage: Storage;
  authenticator: DbAuthenticator;
  authorizer: Authorizer;
  passwords: PasswordHasher;
  repositories: RepositoryService;
  content: ContentService;
  audit: AuditLog;
  http: HttpHelpers;
  quotas: QuotaService;
  requestGc(): Promise<void>;
  /** Seals robot tokens so administrators can read them again. */
  secrets: SecretBox;
  /** Scan results, summaries and the organizations' pull policy. */
  scanning: SecurityScanning;
}
