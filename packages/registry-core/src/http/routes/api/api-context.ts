import type { Request } from 'express';
import type { AuditEntry } from '../../../audit/audit-log';
import { AccountService } from '../../../services/account-service';
import { LogQuery } from '../../../services/log-query';
import { PermissionService } from '../../../services/permission-service';
import { RepositoryStats } from '../../../services/repository-stats';
import { RobotService } from '../../../services/robot-service';
import { TeamService } from '../../../services/team-service';
import { apiAccess, type ApiAccess } from './access';
import type { ApiDeps } from './api-deps';

/** What the core route groups share: the deps, access checks and the account/permission services. */
export interface ApiContext {
  deps: ApiDeps;
  access: ApiAccess;
  accounts: AccountService;
  robots: RobotService;
  permissions: PermissionService;
  logs: LogQuery;
  teams: TeamService;
  stats: RepositoryStats;
  /** Writes an admin action to the audit log with the request's performer, address and user agent. */
  audit(req: Request, entry: Omit<AuditEntry, 'performer' | 'ip' | 'userAgent'>): Promise<void>;
}

export function createApiContext(deps: ApiDeps): ApiContext {
  return {
    deps,
    access: apiAccess(deps),
    accounts: new AccountService(deps.db, deps.clock, deps.passwords),
    robots: new RobotService(deps.db, deps.clock, deps.secrets),
    permissions: new PermissionService(deps.db, deps.clock),
    logs: new LogQuery(deps.db),
    teams: new TeamService(deps.db, deps.clock),
    stats: new RepositoryStats(deps.db),
    audit: (req, entry) =>
      deps.audit.record({ ...entry, performer: deps.http.principal(req), ip: deps.http.clientIp(req), userAgent: req.get('user-agent') ?? undefined }),
  };
}
