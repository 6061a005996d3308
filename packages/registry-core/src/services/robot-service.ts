import { hashToken, newRobotToken } from '../auth/passwords';
import type { SecretBox } from '../auth/secret-box';
import { type Db, isUniqueViolation } from '../db/database';
import { RegistryError } from '../errors/registry-error';
import type { Clock } from './clock';

export interface RobotRow {
  id: number;
  org_id: number;
  short_name: string;
  description: string;
  created_at: number;
}

function toRobot(row: Record<string, unknown>): RobotRow {
  return {
    id: Number(row.id),
    org_id: Number(row.org_id),
    short_name: String(row.short_name),
    description: row.description === null || row.description === undefined ? '' : String(row.description),
    created_at: Number(row.created_at),
  };
}

/**
 * Robot accounts `<org>+<short>`. Their token authenticates by its SHA-256 hash;
 * a copy sealed with the instance's secret key lets organization administrators
 * read it again later, as Quay allows.
 */
export class RobotService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly secrets: SecretBox,
  ) {}

  async list(orgId: number): Promise<RobotRow[]> {
    return (await this.db('robots').where({ org_id: orgId }).orderBy('short_name')).map(toRobot);
  }

  async find(orgId: number, shortName: string): Promise<RobotRow | null> {
    const row = await this.db('robots').where({ org_id: orgId, short_name: shortName }).first();
    return row ? toRobot(row) : null;
  }

  /** Creates a robot and returns it with its token. Throws CONFLICT when it exists. */
  async create(orgId: number, shortName: string, description: string): Promise<{ robot: RobotRow; token: string }> {
    const token = newRobotToken();
    try {
      await this.db('robots').insert({
        org_id: orgId,
        short_name: shortName,
        token_hash: hashToken(token),
        token_sealed: this.secrets.encrypt(token),
        description,
        created_at: this.clock.now(),
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new RegistryError('CONFLICT', `robot ${shortName} already exists`);
      throw err;
    }
    const robot = await this.find(orgId, shortName);
    if (!robot) throw new Error(`robot ${shortName} vanished after creation`);
    return { robot, token };
  }

  /** Replaces the token; the old one stops working at once (bearer tokens issued with it expire on their own). */
  async regenerate(robot: RobotRow): Promise<string> {
    const token = newRobotToken();
    await this.db('robots').where({ id: robot.id }).update({ token_hash: hashToken(token), token_sealed: this.secrets.encrypt(token) });
    return token;
  }

  /** The current token, or null when it cannot be recovered (sealed with another key). */
  async revealToken(robot: RobotRow): Promise<string | null> {
    const row = await this.db('robots').where({ id: robot.id }).first('token_sealed');
    if (!row?.token_sealed) return null;
    try {
      return this.secrets.decrypt(String(row.token_sealed));
    } catch {
      return null;
    }
  }

  /** Deletes the robot with its repository and default permissions. */
  async delete(robot: RobotRow): Promise<void> {
    await this.db.transaction(async (trx) => {
      await trx('permissions').where({ subject_kind: 'robot', subject_id: robot.id }).delete();
      await trx('prototypes').where({ delegate_kind: 'robot', delegate_id: robot.id }).delete();
      await trx('team_members').where({ subject_kind: 'robot', subject_id: robot.id }).delete();
      await trx('robots').where({ id: robot.id }).delete();
    });
  }
}
