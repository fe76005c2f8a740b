// Fault injection: a seeded share of completion attempts fails just before
// COMMIT (what a crash, a lost connection or a deferred constraint does to a
// transaction at its last moment), for the harness's rollback and queue
// scenarios. Off unless ALERTBENCH_INJECT_ROLLBACK_RATE > 0.

import { InjectedRollback, NO_HOOKS } from './completion.js';

/** mulberry32: a small, fast, seeded PRNG; returns floats in [0, 1). */
export function seededRandom(seed) {
  let state = (Number(BigInt.asUintN(32, BigInt(seed))) ^ 0x9e3779b9) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Completion hooks that fail ``rate`` of the attempts at before_commit. */
export function randomRollback(rate, seed) {
  const random = seededRandom(seed);
  const hooks = {
    injected: 0,
    async after(stage, projectId) {
      if (stage === 'before_commit' && random() < rate) {
        hooks.injected += 1;
        throw new InjectedRollback(`injected failure before commit (project ${projectId})`);
      }
    },
  };
  return hooks;
}

/** The hooks for a configuration. */
export function hooksFor(config) {
  return config.injectRollbackRate > 0 ? randomRollback(config.injectRollbackRate, config.injectSeed) : NO_HOOKS;
}
