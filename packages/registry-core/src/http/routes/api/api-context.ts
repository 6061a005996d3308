import type { Request } from 'express';
import type { AuditEntry } from '../../../audit/audit-log';
import type { AdminServices } from '../../../services/admin-services';
import { apiAccess, type ApiAccess } from './access';
import type { ApiDeps } from './api-deps';

/** What the core route groups share: the deps, access checks and the administration services. */
export interface ApiContext extends AdminServices {
  deps: ApiDeps;
  access: ApiAccess;
  /** Writes an admin action to the audit log with the request's performer, address and user agent. */
  audit(req: Request, entry: Omit<AuditEntry, 'performer' | 'ip' | 'userAgent'>): Promise<void>;
}

export function createApiContext(deps: ApiDeps): ApiContext {
  return {
    ...deps.admin,
    deps,
    access: apiAccess(deps),
    audit: (req, entry) =>
      deps.audit.record({ ...entry, performer: deps.http.principal(req), ip: deps.http.clientIp(req), userAgent: req.get('user-agent') ?? undefined }),
  };
}
