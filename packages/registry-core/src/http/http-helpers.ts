import type { Request, RequestHandler } from 'express';
import type { Principal } from '../auth/principal';
import type { OrganizationRow } from '../services/repository-service';

/** What plugins need to write authenticated API routes consistent with the core's. */
export interface HttpHelpers {
  asyncHandler: typeof import('./async-handler').asyncHandler;
  /** The principal authenticated for this request (anonymous when none). */
  principal(req: Request): Principal;
  /** Middleware: 401 unless the request is authenticated. */
  requireAuthenticated: RequestHandler;
  /**
   * Loads the organization named by route parameter `param` (default "org") and
   * requires the principal to administer it (or be a superuser). Throws NOT_FOUND / UNAUTHORIZED / DENIED.
   */
  requireOrgAdmin(req: Request, param?: string): Promise<OrganizationRow>;
  /** The organization named by the route parameter, visible to the principal. */
  requireOrgReader(req: Request, param?: string): Promise<OrganizationRow>;
  /**
   * The organization, when the principal is a member (users and the organization's
   * robots) or a superuser; `isAdmin` tells whether they administer it.
   * Throws NOT_FOUND / UNAUTHORIZED / DENIED.
   */
  requireOrgMember(req: Request, param?: string): Promise<{ org: OrganizationRow; isAdmin: boolean }>;
  clientIp(req: Request): string;
  /** Streams a body to a response and ends it, handing a recycling body's buffers back once the socket took them. */
  sendBody: typeof import('./send-body').sendBody;
}
