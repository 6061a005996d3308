/**
 * The configurations of docs/mirroring.md, read from the page itself so that
 * what the tests run is what readers copy. A snippet is the fenced block that
 * follows an `<!-- snippet: NAME -->` comment.
 *
 * The page is written for `https://entrepot.corp` with TLS; `forLocal` makes
 * exactly these substitutions for the plain-HTTP Entrepot on loopback, and
 * nothing else:
 * - `https://entrepot.corp` → `http://127.0.0.1:PORT`, `entrepot.corp` → `127.0.0.1:PORT`;
 * - registries.conf `insecure = false` → `insecure = true` (plain HTTP);
 * - `ROBOT_TOKEN` → the robot's token.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const DOCS_PATH = join(__dirname, '../../../../docs/mirroring.md');
export const DOCS_HOST = 'entrepot.corp';

/** Every snippet of the page, by name. Throws on a name used twice or a comment with no block after it. */
export function readSnippets(markdown = readFileSync(DOCS_PATH, 'utf8')): Map<string, string> {
  const snippets = new Map<string, string>();
  const re = /<!--\s*snippet:\s*([a-z0-9-]+)\s*-->\s*\n```[a-z]*\n([\s\S]*?)\n```/g;
  for (const m of markdown.matchAll(re)) {
    if (snippets.has(m[1])) throw new Error(`docs/mirroring.md: snippet ${m[1]} appears twice`);
    snippets.set(m[1], `${m[2]}\n`);
  }
  const markers = [...markdown.matchAll(/<!--\s*snippet:\s*([a-z0-9-]+)\s*-->/g)].map((m) => m[1]);
  for (const name of markers) if (!snippets.has(name)) throw new Error(`docs/mirroring.md: snippet ${name} has no fenced block right after it`);
  return snippets;
}

export function snippet(name: string): string {
  const text = readSnippets().get(name);
  if (text === undefined) throw new Error(`docs/mirroring.md has no snippet "${name}"`);
  return text;
}

/** The substitutions described above, for an Entrepot at `127.0.0.1:PORT`. */
export function forLocal(text: string, entrepotHost: string, robotToken = ''): string {
  return text
    .replace(/https:\/\/entrepot\.corp/g, `http://${entrepotHost}`)
    .replace(/entrepot\.corp/g, entrepotHost)
    .replace(/insecure = false/g, 'insecure = true')
    .replace(/ROBOT_TOKEN/g, robotToken);
}

/** A docs snippet with the loopback substitutions applied. */
export function localSnippet(name: string, entrepotHost: string, robotToken = ''): string {
  return forLocal(snippet(name), entrepotHost, robotToken);
}
