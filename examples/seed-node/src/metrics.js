// Prometheus metrics (prom-client), in their own registry. Names are the
// reference pipeline's, so one dashboard or report reads either target.

import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import client from 'prom-client';

const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
const GC_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];
const QUERY_BUCKETS = [1, 2, 3, 5, 7, 10, 15, 25, 50, 100, 300, 1000, 3000, 10000, 40000];

const GC_KINDS = {
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

export class Metrics {
  constructor() {
    const registry = new client.Registry();
    this.registry = registry;
    client.collectDefaultMetrics({ register: registry });
    const counter = (name, help, labelNames = []) => new client.Counter({ name, help, labelNames, registers: [registry] });
    const histogram = (name, help, labelNames, buckets) =>
      new client.Histogram({ name, help, labelNames, buckets, registers: [registry] });
    this.alertGenerationSeconds = histogram(
      'alertbench_alert_generation_seconds',
      'Request -> alerts committed, per operation (generate | complete).',
      ['operation'],
      LATENCY_BUCKETS_S,
    );
    this.dbQueriesPerRequest = histogram(
      'alertbench_db_queries_per_request',
      'Statements sent to Postgres per request (client-side count), per operation.',
      ['operation'],
      QUERY_BUCKETS,
    );
    this.alertsCreated = counter('alertbench_alerts_created_total', 'Alerts inserted, per operation.', ['operation']);
    this.duplicatesPrevented = counter(
      'alertbench_alert_duplicates_prevented_total',
      'Alert inserts skipped because the step already had an ACTIVE alert.',
    );
    this.completions = counter(
      'alertbench_completions_total',
      'Completion attempts by outcome (ok | stale | not_found | forbidden | rolled_back | error).',
      ['outcome'],
    );
    this.queueJobs = counter(
      'alertbench_queue_jobs_total',
      'Queue job attempts by outcome (complete | retried | failed).',
      ['outcome'],
    );
    this.queueRetries = counter('alertbench_queue_retries_total', 'Queue job attempts that failed and were scheduled again.');
    this.queueDeadLetters = counter(
      'alertbench_queue_dead_letters_total',
      'Queue jobs that exhausted their attempts (dead-letter state).',
    );
    this.cacheRequests = counter(
      'alertbench_cache_requests_total',
      'Per-user alert list reads by cache result (hit | miss | bypass | error).',
      ['result'],
    );
    this.cacheInvalidationErrors = counter(
      'alertbench_cache_invalidation_errors_total',
      'Invalidations that could not reach Redis (entries then expire by TTL).',
    );
    this.relayEvents = counter(
      'alertbench_relay_events_total',
      'Relay activity: alerts emitted from notifications (live) or by replay after a reconnect (replay), and LISTEN connections established (connect).',
      ['kind'],
    );
    this.gcPauses = histogram(
      'alertbench_gc_pause_seconds',
      'Time the garbage collector stopped the process, per kind of collection.',
      ['generation'],
      GC_BUCKETS_S,
    );
    this._gcObserver = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const kind = GC_KINDS[entry.detail?.kind ?? entry.kind] ?? 'other';
        this.gcPauses.labels(kind).observe(entry.duration / 1000);
      }
    });
    this._gcObserver.observe({ entryTypes: ['gc'] });
  }

  get contentType() {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition. */
  render() {
    return this.registry.metrics();
  }

  close() {
    this._gcObserver.disconnect();
  }
}
