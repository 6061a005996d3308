import type { RequestHandler, Router } from 'express';
import { openApiPath, type HttpMethod } from './api-docs';

export interface ServedRoute {
  /** `all` for a route that answers every method (a disabled feature's refusal). */
  method: HttpMethod | 'all';
  /** OpenAPI form: `/organization/{org}`. */
  path: string;
}

/** A middleware that dispatches several endpoints itself and says which (the repository dispatcher). */
export type DispatchingHandler = RequestHandler & { endpoints: ServedRoute[] };

export function dispatching(handler: RequestHandler, endpoints: ServedRoute[]): DispatchingHandler {
  return Object.assign(handler, { endpoints });
}

interface RouteLike {
  path: string | string[];
  methods: Record<string, boolean>;
}

interface LayerLike {
  route?: RouteLike;
  handle?: unknown;
}

function hasEndpoints(handle: unknown): handle is DispatchingHandler {
  return typeof handle === 'function' && Array.isArray((handle as Partial<DispatchingHandler>).endpoints);
}

/** Every route an Express router serves: its own routes and those of dispatching middleware. */
export function servedRoutes(router: Router): ServedRoute[] {
  const out: ServedRoute[] = [];
  for (const layer of router.stack as LayerLike[]) {
    if (layer.route) {
      const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
      for (const [method, on] of Object.entries(layer.route.methods)) {
        if (!on) continue;
        const verb = method === '_all' ? 'all' : (method as HttpMethod);
        for (const path of paths) out.push({ method: verb, path: openApiPath(path) });
      }
    } else if (hasEndpoints(layer.handle)) {
      out.push(...layer.handle.endpoints);
    }
  }
  return out;
}
