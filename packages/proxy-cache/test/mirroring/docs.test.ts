/**
 * docs/mirroring.md promises that every configuration block marked as a
 * snippet is run by a test of this directory with a real client. This file
 * keeps that promise honest: each snippet is named by at least one test file,
 * and the formats that no client parses here (JSON, YAML, shell) are checked.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DOCS_HOST, forLocal, readSnippets } from './docs-snippets';

describe('docs/mirroring.md snippets', () => {
  const snippets = readSnippets();
  const testSources = readdirSync(__dirname)
    .filter((f) => f.endsWith('.test.ts') && f !== 'docs.test.ts')
    .map((f) => ({ file: f, text: readFileSync(join(__dirname, f), 'utf8') }));

  it('has the configurations the page promises', () => {
    expect([...snippets.keys()].sort()).toEqual(
      [
        'daemon-json',
        'entrepot-env-default-org',
        'entrepot-yaml-default-org',
        'hosts-toml-ns',
        'hosts-toml-ns-ghcr',
        'hosts-toml-override-path',
        'podman-login',
        'registries-conf-dockerhub',
        'registries-conf-ghcr',
        'registries-conf-official',
      ].sort(),
    );
  });

  it('runs every snippet in some test of this directory', () => {
    for (const name of snippets.keys()) {
      const users = testSources.filter((s) => s.text.includes(`'${name}'`)).map((s) => s.file);
      expect([name, users.length > 0]).toEqual([name, true]);
    }
  });

  it('writes snippets for the documented host only, so the loopback substitutions cover them', () => {
    for (const [name, text] of snippets) {
      expect([name, /127\.0\.0\.1|localhost/.test(text)]).toEqual([name, false]);
      if (!name.startsWith('entrepot-')) expect([name, text.includes(DOCS_HOST)]).toEqual([name, true]);
      expect([name, forLocal(text, '127.0.0.1:5000', 'tok').includes(DOCS_HOST)]).toEqual([name, false]);
    }
  });

  it('has valid JSON and YAML', () => {
    expect(JSON.parse(snippets.get('daemon-json')!)).toEqual({ 'registry-mirrors': ['https://entrepot.corp'] });
    expect(parseYaml(snippets.get('entrepot-yaml-default-org')!)).toEqual({ proxy_cache: { default_mirror_org: 'dockerhub' } });
  });
});
