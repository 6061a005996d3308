/** Quay's date format (RFC 2822 as Python's `email.utils.formatdate` writes it): `Thu, 04 Apr 2019 12:00:00 -0000`. */
export function quayDate(epochMs: number): string {
  return new Date(epochMs).toUTCString().replace(/GMT$/, '-0000');
}

/** Quay reports some times as whole seconds since the epoch. */
export function epochSeconds(epochMs: number): number {
  return Math.floor(epochMs / 1000);
}
