import type { Migration } from '../database';
import { coreSchema } from './core-0001-schema';
import { robotTokenSecret } from './core-0002-robot-token-secret';
import { quotaSchema } from './core-0003-quota';
import { quotaCounting } from './core-0004-quota-counting';
import { securityScans } from './core-0005-security-scans';
import { quotaLimits } from './core-0006-quota-limits';
import { teams } from './core-0006-teams';
import { quotaReservedDigests } from './core-0007-quota-reserved-digests';

/** The core's schema, in order; plugins' migrations run after these. */
export const coreMigrations: readonly Migration[] = [coreSchema, robotTokenSecret, quotaSchema, quotaCounting, securityScans, quotaLimits, teams, quotaReservedDigests];
