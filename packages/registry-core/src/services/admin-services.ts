import type { PasswordHasher } from '../auth/passwords';
import type { SecretBox } from '../auth/secret-box';
import type { Db } from '../db/database';
import { AccountService } from './account-service';
import type { Clock } from './clock';
import { LogQuery } from './log-query';
import { OrganizationService } from './organization-service';
import { PermissionService } from './permission-service';
import { RepositoryStats } from './repository-stats';
import { RobotService } from './robot-service';
import { TeamService } from './team-service';

/** The services behind account and organization administration (the `/api/v1` route groups). */
export interface AdminServices {
  accounts: AccountService;
  organizations: OrganizationService;
  robots: RobotService;
  permissions: PermissionService;
  logs: LogQuery;
  teams: TeamService;
  stats: RepositoryStats;
}

export function createAdminServices(db: Db, clock: Clock, passwords: PasswordHasher, secrets: SecretBox): AdminServices {
  return {
    accounts: new AccountService(db, clock, passwords),
    organizations: new OrganizationService(db, clock),
    robots: new RobotService(db, clock, secrets),
    permissions: new PermissionService(db, clock),
    logs: new LogQuery(db),
    teams: new TeamService(db, clock),
    stats: new RepositoryStats(db),
  };
}
