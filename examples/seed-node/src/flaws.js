// Named flaws: defects of the seed system that this target can switch on
// (env ALERTBENCH_FLAWS, comma-separated), the same names as the reference
// pipeline's. Each changes exactly one behaviour, so a scenario that fails
// under a flaw fails for that flaw's reason. With none, the target honours
// the pipeline contract.

/** @type {Readonly<Record<string, string>>} flaw name -> what it breaks */
export const FLAWS = Object.freeze({
  n_plus_one: 'batch generation queries one project at a time (N+1)',
  no_unique_index: 'no unique index on ACTIVE alerts; check-then-insert races',
  unscoped_complete: "completion closes every project's alerts for the step",
  non_atomic_completion: 'completion without a transaction or tracker lock',
  no_retry: 'queued jobs get a single attempt',
  stale_cache: 'the per-user alert cache is never invalidated (TTL only)',
  emit_before_commit: 'alerts are emitted inside the transaction, before commit',
  no_room_auth: "anyone may join any project's Socket.IO room",
});

export class FlawError extends Error {}

/**
 * Parse a comma-separated list of flaw names ("" -> none).
 * @param {string | undefined} text
 * @returns {ReadonlySet<string>}
 */
export function parseFlaws(text) {
  const flaws = new Set();
  for (const raw of (text ?? '').split(',')) {
    const name = raw.trim().toLowerCase().replaceAll('-', '_');
    if (!name) continue;
    if (!Object.hasOwn(FLAWS, name)) {
      const valid = Object.keys(FLAWS).sort().join(', ');
      throw new FlawError(`unknown flaw ${JSON.stringify(raw.trim())}; valid flaws: ${valid}`);
    }
    flaws.add(name);
  }
  return flaws;
}
