#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { ApiClient, repoPath } from './api-client';

/** Where the CLI writes; tests capture it. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  fetch?: typeof fetch;
}

/** What command groups (the core's and other packages') get to talk to the instance. */
export interface CliContext {
  /** A client for the instance named by --url/--user/--password (or ENTREPOT_URL/_USER/_PASSWORD). */
  client(command: Command): ApiClient;
  /** Prints `value` as JSON with --json, else `text`. */
  print(command: Command, value: unknown, text: string): void;
}

/** Adds commands to the `entrepot` program (the proxy-cache package adds its own). */
export type CliExtension = (program: Command, context: CliContext) => void;

const ROLES = ['read', 'write', 'admin'];

interface GlobalOptions {
  url?: string;
  user?: string;
  password?: string;
  json?: boolean;
}

function roleArgument(value: string): string {
  if (!ROLES.includes(value)) throw new Error(`role must be one of ${ROLES.join(', ')}, not ${value}`);
  return value;
}

function coreCommands(program: Command, ctx: CliContext, io: CliIo): void {
  const org = program.command('org').description('organizations');
  org
    .command('create <name>')
    .description('create an organization (you become its administrator)')
    .option('--public', 'anyone may pull its repositories')
    .option('--email <email>', 'contact address')
    .action(async (name: string, opts: { public?: boolean; email?: string }, cmd: Command) => {
      const result = await ctx.client(cmd).call('POST', '/organization/', { name, is_public: Boolean(opts.public), ...(opts.email ? { email: opts.email } : {}) });
      ctx.print(cmd, result, `created organization ${name}`);
    });

  const robot = program.command('robot').description('robot accounts <org>+<name>');
  robot
    .command('create <org> <name>')
    .description('create a robot; prints its token (shown again only to administrators)')
    .option('--description <text>', 'what the robot is for')
    .action(async (orgName: string, name: string, opts: { description?: string }, cmd: Command) => {
      const result = (await ctx.client(cmd).call('PUT', `/organization/${encodeURIComponent(orgName)}/robots/${encodeURIComponent(name)}`, opts.description ? { description: opts.description } : {})) as { name: string; token: string };
      ctx.print(cmd, result, `${result.name}\n${result.token}`);
    });
  robot
    .command('list <org>')
    .description("list an organization's robots")
    .option('--token', 'include tokens (administrators)')
    .action(async (orgName: string, opts: { token?: boolean }, cmd: Command) => {
      const result = (await ctx.client(cmd).call('GET', `/organization/${encodeURIComponent(orgName)}/robots?token=${opts.token ? 'true' : 'false'}`)) as {
        robots: Array<{ name: string; description: string; token?: string | null }>;
      };
      ctx.print(cmd, result, result.robots.map((r) => [r.name, r.description, ...(opts.token ? [r.token ?? ''] : [])].join('\t')).join('\n'));
    });
  robot
    .command('delete <org> <name>')
    .description('delete a robot and its permissions')
    .action(async (orgName: string, name: string, _opts: unknown, cmd: Command) => {
      await ctx.client(cmd).call('DELETE', `/organization/${encodeURIComponent(orgName)}/robots/${encodeURIComponent(name)}`);
      ctx.print(cmd, { deleted: `${orgName}+${name}` }, `deleted ${orgName}+${name}`);
    });

  const perm = program.command('perm').description('repository permissions');
  perm
    .command('grant <repository> <name> <role>')
    .description('give a user or robot (<org>+<name>) read, write or admin on one repository (<org>/<path>)')
    .action(async (repository: string, name: string, role: string, _opts: unknown, cmd: Command) => {
      roleArgument(role);
      const result = await ctx.client(cmd).call('PUT', `/repository/${repoPath(repository)}/permissions/user/${encodeURIComponent(name)}`, { role });
      ctx.print(cmd, result, `${name} has ${role} on ${repository}`);
    });
  perm
    .command('grant-all <org> <name> <role>')
    .description('give a user or robot a role on every repository the organization has now')
    .action(async (orgName: string, name: string, role: string, _opts: unknown, cmd: Command) => {
      roleArgument(role);
      const result = (await ctx.client(cmd).call('PUT', `/organization/${encodeURIComponent(orgName)}/permissions/user/${encodeURIComponent(name)}`, { role })) as { repositories: number };
      ctx.print(cmd, result, `${name} has ${role} on ${result.repositories} repositories of ${orgName}`);
    });

  program
    .command('prototype')
    .description('default permissions for repositories created later')
    .command('add <org> <name> <role>')
    .description('give a user or robot (<org>+<name>) a role on every repository created from now on')
    .action(async (orgName: string, name: string, role: string, _opts: unknown, cmd: Command) => {
      roleArgument(role);
      const result = (await ctx.client(cmd).call('POST', `/organization/${encodeURIComponent(orgName)}/prototypes`, { role, delegate: { kind: 'user', name } })) as { id: string };
      ctx.print(cmd, result, `default permission ${result.id}: ${name} gets ${role} on new repositories of ${orgName}`);
    });

  program
    .command('logs <org>')
    .description("an organization's audit log, newest first")
    .option('--repository <path>', 'only this repository (path below the organization)')
    .option('--kind <kinds>', 'comma-separated log kinds')
    .option('--performer <name>', 'only actions by this user or robot')
    .option('--since <time>', 'start: MM/DD/YYYY, ISO 8601 or epoch seconds')
    .option('--until <time>', 'end (exclusive for times, inclusive for MM/DD/YYYY days)')
    .option('--limit <n>', 'entries per page', '100')
    .option('--all', 'follow next_page to the end')
    .option('--csv', 'CSV instead of lines')
    .action(async (orgName: string, opts: Record<string, string | boolean | undefined>, cmd: Command) => {
      const params = new URLSearchParams();
      const set = (key: string, value: unknown) => typeof value === 'string' && params.set(key, value);
      set('repository', opts.repository);
      set('kind', opts.kind);
      set('performer', opts.performer);
      set('starttime', opts.since);
      set('endtime', opts.until);
      set('limit', opts.limit);
      if (opts.csv) params.set('format', 'csv');
      const client = ctx.client(cmd);
      const base = `/organization/${encodeURIComponent(orgName)}/logs`;
      if (opts.csv) {
        io.out(String(await client.call('GET', `${base}?${params}`)));
        return;
      }
      const entries: unknown[] = [];
      for (;;) {
        const page = (await client.call('GET', `${base}?${params}`)) as { logs: Array<{ kind: string; timestamp: string; performer: { name: string }; ip: string | null; repository: string | null; metadata: unknown }>; next_page?: string };
        entries.push(...page.logs);
        if (!cmd.optsWithGlobals<GlobalOptions>().json) {
          for (const e of page.logs) ctx.print(cmd, null, [e.timestamp, e.kind, e.performer.name, e.ip ?? '-', e.repository ?? '-', JSON.stringify(e.metadata)].join('\t'));
        }
        if (!opts.all || !page.next_page) break;
        params.set('next_page', page.next_page);
      }
      if (cmd.optsWithGlobals<GlobalOptions>().json) ctx.print(cmd, { logs: entries }, '');
    });
}

/** Builds the `entrepot` program. */
export function createProgram(io: CliIo, extensions: CliExtension[] = []): Command {
  const program = new Command('entrepot');
  program
    .description('operate an Entrepot registry over its API')
    .addOption(new Option('--url <url>', 'Entrepot base URL [env: ENTREPOT_URL] (default: http://localhost:5000)'))
    .addOption(new Option('--user <name>', 'user name, or robot <org>+<name> [env: ENTREPOT_USER]'))
    .addOption(new Option('--password <secret>', 'password or robot token [env: ENTREPOT_PASSWORD]'))
    .option('--json', 'print JSON responses')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });
  const context: CliContext = {
    client(command) {
      const opts = command.optsWithGlobals<GlobalOptions>();
      return new ApiClient({
        url: opts.url ?? io.env.ENTREPOT_URL ?? 'http://localhost:5000',
        user: opts.user ?? io.env.ENTREPOT_USER,
        password: opts.password ?? io.env.ENTREPOT_PASSWORD,
        fetch: io.fetch,
      });
    },
    print(command, value, text) {
      if (command.optsWithGlobals<GlobalOptions>().json) {
        if (value !== null) io.out(`${JSON.stringify(value, null, 2)}\n`);
      } else if (text) {
        io.out(`${text}\n`);
      }
    },
  };
  coreCommands(program, context, io);
  for (const extend of extensions) extend(program, context);
  // Subcommands report usage errors through the same output and exit handling.
  const configure = (cmd: Command) => {
    cmd.exitOverride().configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });
    cmd.commands.forEach(configure);
  };
  program.commands.forEach(configure);
  return program;
}

/** Runs the CLI; resolves with the process exit code. */
export async function runCli(argv: string[], io: CliIo, extensions: CliExtension[] = []): Promise<number> {
  const program = createProgram(io, extensions);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    // Commander has already written its own usage errors and help.
    if (err instanceof CommanderError) return err.exitCode;
    io.err(`entrepot: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

/**
 * Command groups of installed plugin packages: each module named in
 * ENTREPOT_CLI_PLUGINS (default: the proxy cache) may export `cliExtension`.
 * A module that is not installed is skipped.
 */
export function loadCliExtensions(env: Readonly<Record<string, string | undefined>>): CliExtension[] {
  const names = (env.ENTREPOT_CLI_PLUGINS ?? '@entrepot/proxy-cache').split(',').map((n) => n.trim()).filter(Boolean);
  const extensions: CliExtension[] = [];
  for (const name of names) {
    let mod: { cliExtension?: unknown };
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      mod = require(name) as { cliExtension?: unknown };
    } catch {
      continue;
    }
    if (typeof mod.cliExtension === 'function') extensions.push(mod.cliExtension as CliExtension);
  }
  return extensions;
}

if (require.main === module) {
  runCli(process.argv.slice(2), { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), env: process.env }, loadCliExtensions(process.env)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`entrepot: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
