import { Command, Option } from 'commander';
import { type CliContext, type CliExtension } from '@entrepot/registry-core';
import { repoPath } from '@entrepot/registry-core';
import { prefetch } from './prefetch';

function positiveInt(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a whole number, not ${value}`);
    return n;
  };
}

/** Reads a secret from standard input (so it never appears in the process list or shell history). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

function orgPath(org: string): string {
  return `/organization/${encodeURIComponent(org)}`;
}

function commands(program: Command, ctx: CliContext): void {
  const cache = program.command('cache').description('pull-through cache organizations');

  cache
    .command('configure <org> <upstream>')
    .description('make <org> a cache of <upstream> (docker.io, docker.io/library, ghcr.io/acme, registry.corp:5000/team)')
    .option('--endpoint <url>', 'reach the registry at this URL instead of its default')
    .option('--username <name>', 'upstream user name')
    .option('--password-stdin', 'read the upstream password or token from standard input')
    .option('--expiration <seconds>', 'staleness period of cached tags', positiveInt('--expiration'))
    .option('--stale-if-error <seconds>', 'how long cached tags may be served past it while the upstream fails', positiveInt('--stale-if-error'))
    .addOption(new Option('--on-upstream-404 <action>', 'what an upstream 404 for a cached tag means').choices(['remove', 'keep']))
    .addOption(new Option('--fill-on-range <when>', 'whether a Range request for an uncached blob also downloads the whole blob').choices(['always', 'never']))
    .option('--insecure', 'plain HTTP or unverified TLS upstream')
    .option('--validate-only', 'check reachability and credentials without saving')
    .action(async (org: string, upstream: string, opts: Record<string, unknown>, cmd: Command) => {
      const body: Record<string, unknown> = { upstream_registry: upstream };
      if (opts.endpoint) body.upstream_endpoint = opts.endpoint;
      if (opts.username) body.upstream_registry_username = opts.username;
      if (opts.passwordStdin) body.upstream_registry_password = await readStdin();
      if (opts.expiration !== undefined) body.expiration_s = opts.expiration;
      if (opts.staleIfError !== undefined) body.stale_if_error_s = opts.staleIfError;
      if (opts.onUpstream404) body.on_upstream_404 = opts.onUpstream404;
      if (opts.fillOnRange) body.fill_on_range = opts.fillOnRange;
      if (opts.insecure) body.insecure = true;
      const client = ctx.client(cmd);
      if (opts.validateOnly) {
        const result = await client.call('POST', `${orgPath(org)}/validateproxycache`, body);
        ctx.print(cmd, result, `upstream ${upstream} is reachable and accepts the credentials`);
        return;
      }
      const result = await client.call('POST', `${orgPath(org)}/proxycache`, body);
      ctx.print(cmd, result, `${org} now caches ${upstream}`);
    });

  cache
    .command('show <org>')
    .description("show a cache organization's configuration (never the password)")
    .action(async (org: string, _opts: unknown, cmd: Command) => {
      const result = (await ctx.client(cmd).call('GET', `${orgPath(org)}/proxycache`)) as Record<string, unknown>;
      ctx.print(cmd, result, Object.entries(result).map(([k, v]) => `${k}: ${String(v)}`).join('\n'));
    });

  cache
    .command('remove <org>')
    .description('stop caching (the organization and its content stay)')
    .action(async (org: string, _opts: unknown, cmd: Command) => {
      await ctx.client(cmd).call('DELETE', `${orgPath(org)}/proxycache`);
      ctx.print(cmd, { removed: org }, `${org} is no longer a cache`);
    });

  cache
    .command('flush <org>')
    .description('remove cached content: the whole organization, one repository, or one tag')
    .option('--repository <path>', 'only this repository (path below the organization)')
    .option('--tag <tag>', 'only this tag (with --repository)')
    .action(async (org: string, opts: { repository?: string; tag?: string }, cmd: Command) => {
      const query = new URLSearchParams();
      if (opts.repository) query.set('repository', opts.repository);
      if (opts.tag) query.set('tag', opts.tag);
      const suffix = query.size > 0 ? `?${query}` : '';
      const result = (await ctx.client(cmd).call('DELETE', `${orgPath(org)}/proxycache/cache${suffix}`)) as { removed: { tags: number; manifests: number }; usage_bytes: number };
      ctx.print(cmd, result, `removed ${result.removed.tags} tags and ${result.removed.manifests} manifests; usage now ${result.usage_bytes} bytes`);
    });

  cache
    .command('quota <org> <limit_bytes>')
    .description("set a cache organization's storage quota and eviction policy")
    .addOption(new Option('--policy <policy>', 'what to evict first').choices(['lru', 'lfu']).default('lru'))
    .action(async (org: string, limit: string, opts: { policy: string }, cmd: Command) => {
      const limitBytes = positiveInt('limit_bytes')(limit);
      const client = ctx.client(cmd);
      const existing = (await client.call('GET', `${orgPath(org)}/quota`)) as Array<{ id: string }>;
      const body = { limit_bytes: limitBytes, eviction_policy: opts.policy };
      const result = existing.length > 0 ? await client.call('PUT', `${orgPath(org)}/quota/${existing[0].id}`, body) : await client.call('POST', `${orgPath(org)}/quota`, body);
      ctx.print(cmd, result, `quota of ${org}: ${limitBytes} bytes, ${opts.policy}`);
    });

  cache
    .command('pin <repository> <tag>')
    .description('never evict this tag (<org>/<path>)')
    .option('--unpin', 'allow eviction again')
    .action(async (repository: string, tag: string, opts: { unpin?: boolean }, cmd: Command) => {
      const result = await ctx.client(cmd).call(opts.unpin ? 'DELETE' : 'PUT', `/repository/${repoPath(repository)}/tag/${encodeURIComponent(tag)}/pin`);
      ctx.print(cmd, result, `${repository}:${tag} ${opts.unpin ? 'unpinned' : 'pinned'}`);
    });

  cache
    .command('prefetch <image>')
    .description('pull <org>/<path>:<tag> (every platform of an index) through the cache so later pulls are warm')
    .option('--platform <os/arch>', 'only this platform of an index')
    .option('--no-progress', 'no progress bar')
    .action(async (image: string, opts: { platform?: string; progress: boolean }, cmd: Command) => {
      const global = cmd.optsWithGlobals<{ url?: string; user?: string; password?: string }>();
      const result = await prefetch({
        image,
        url: global.url ?? process.env.ENTREPOT_URL ?? 'http://localhost:5000',
        user: global.user ?? process.env.ENTREPOT_USER,
        password: global.password ?? process.env.ENTREPOT_PASSWORD,
        platform: opts.platform,
        progress: opts.progress && process.stderr.isTTY === true,
      });
      ctx.print(cmd, result, `prefetched ${image}: ${result.manifests} manifests, ${result.blobs} blobs, ${result.bytes} bytes`);
    });
}

export const cliExtension: CliExtension = commands;
