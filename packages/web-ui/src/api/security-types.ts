/**
 * Quay's security report for one manifest (Clair v4 results). Hand-written until
 * the security endpoint is described in the OpenAPI document; then it comes from
 * openapi-types.ts like the other types.
 */

export interface Vulnerability {
  Name: string;
  Severity: string;
  NamespaceName?: string;
  Link?: string;
  FixedBy?: string;
  Description?: string;
}

export interface Feature {
  Name: string;
  Version: string;
  NamespaceName?: string;
  VersionFormat?: string;
  AddedBy?: string;
  Vulnerabilities?: Vulnerability[];
}

/** Quay's security report for one manifest (Clair v4 results). */
export interface SecurityReport {
  status: string;
  data: { Layer: { Features: Feature[] } } | null;
}
