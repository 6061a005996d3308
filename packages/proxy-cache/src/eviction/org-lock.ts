/**
 * Serializes admission decisions per organization in this process, so that two
 * fills cannot both see room for themselves in the same free space.
 */
export class OrgLock {
  private readonly tails = new Map<number, Promise<unknown>>();

  run<T>(orgId: number, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(orgId) ?? Promise.resolve();
    const next = previous.then(work, work);
    const tail = next.catch(() => undefined);
    this.tails.set(orgId, tail);
    void tail.then(() => {
      if (this.tails.get(orgId) === tail) this.tails.delete(orgId);
    });
    return next;
  }
}
